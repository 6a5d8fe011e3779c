"""The search algorithm of a study, built so that a resumed study agrees with the trials Tune restored.

Tune saves an experiment as separate files (the trials; the search generator's trial count and the
concurrency limiter's running set; the Optuna searcher), writes them to a staging folder and copies that
folder to the storage folder in a background thread. A driver killed during a copy, or a save that lands
while the previous copy still runs, leaves the storage folder with files of two different moments. Tune
restores each file as it finds it, and two mismatches then break a resumed study:

- the limiter still counts a trial that the restored trials do not have, so it never suggests again and
  Tune waits for a suggestion forever (with ``max_concurrent: 1``: the study hangs);
- the Optuna searcher was saved before a trial that Tune restores and runs, and fails on its first
  result (``KeyError``).

:func:`build_search` wraps the searcher so that both can be repaired, and :class:`RestoredSearch`, a
callback installed only on resume, repairs them from the restored trials before the first suggestion (and
before the restored search may call itself finished).
"""

from __future__ import annotations

import logging
from typing import Any

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator
from ray.tune.search.optuna import OptunaSearch

logger = logging.getLogger(__name__)


class StudySearcher(OptunaSearch):
    """Optuna's Tune searcher that leaves out a trial it never suggested instead of failing on it.

    Such a trial exists only after a resume from a torn save (see the module docstring); it runs and is
    recorded as usual, and Optuna's model is fitted without it.
    """

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._ot_trials:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._ot_trials:
            super().on_trial_complete(trial_id, result, error)
        else:
            logger.warning(
                "Optuna never suggested trial %s (restored from a torn save): left out of its model", trial_id
            )


class StudySearchGenerator(SearchGenerator):
    """Tune's search generator that, once restored, does not call the search finished until
    :func:`agree_with_trials` has set its trial count: a count saved ahead of the trials could otherwise end
    a resumed study before its first loop turn, one trial short."""

    awaiting_trials = False

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        self.awaiting_trials = True

    def is_finished(self) -> bool:
        return not self.awaiting_trials and super().is_finished()


def build_search(searcher: StudySearcher, max_concurrent: int) -> StudySearchGenerator:
    """``searcher`` behind a concurrency limiter (when ``max_concurrent`` > 0), in the search generator Tune
    would wrap it in itself; built here so that :class:`RestoredSearch` can reach it after a restore."""
    limited: Searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent) if max_concurrent else searcher
    return StudySearchGenerator(limited)


class RestoredSearch(tune.Callback):
    """On the first loop turn of a restored experiment, makes ``search`` agree with the restored trials:
    the generator has created exactly those trials, and the limiter's running set is the unfinished ones."""

    def __init__(self, search: SearchGenerator | Searcher) -> None:
        self.search = search
        self.done = False

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self.done:
            return
        self.done = True
        if isinstance(self.search, SearchGenerator):
            agree_with_trials(self.search, trials)
        else:  # saved by an optforge before build_search: Tune wraps this searcher itself, out of reach
            logger.warning("Resumed a study saved without its search generator: its searcher is not checked")


def agree_with_trials(search: SearchGenerator, trials: list[Trial]) -> None:
    """Set ``search``'s trial count and its limiter's running set from ``trials`` (Tune's own list)."""
    unfinished = {t.trial_id for t in trials if t.status not in (Trial.TERMINATED, Trial.ERROR)}
    if search._counter != len(trials):
        logger.warning("Resumed search had counted %d trials, the experiment has %d", search._counter, len(trials))
    search._counter = len(trials)  # Tune keeps the count private; it decides when the study has all its trials
    if isinstance(search, StudySearchGenerator):
        search.awaiting_trials = False
    searcher = search.searcher
    while hasattr(searcher, "searcher"):  # the wrappers, as Tune itself walks them
        if isinstance(searcher, ConcurrencyLimiter):
            if searcher.live_trials != unfinished:
                logger.warning(
                    "Resumed limiter counted %s running, the experiment %s", searcher.live_trials, unfinished
                )
            searcher.live_trials = set(unfinished)
            searcher.num_unfinished_live_trials = len(unfinished)
        searcher = searcher.searcher
