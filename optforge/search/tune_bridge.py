"""Ray Tune's side of a study: the callback that feeds the recorder, and the stopper that cancels."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

from optforge.search.recorder import StudyRecorder
from optforge.search.results import Phase
from optforge.spec import TrialConfig


def trial_job(config: dict[str, Any]) -> tuple[TrialConfig, int | None]:
    """The TrialConfig and seed a Tune trial config carries (search: top level; reseed: under ``reseed``)."""
    job = config.get("reseed", config)
    return TrialConfig.model_validate(job["trial_config"]), config.get("seed")


class RecorderCallback(tune.Callback):
    """Forwards Tune's trial lifecycle (in the driver process) to a :class:`StudyRecorder`.

    Tune pickles its run config into the experiment directory; the recorder (and the caller's reporter
    inside it, often holding a database session) stays out of that pickle, and a resumed study
    installs a fresh callback.
    """

    def __getstate__(self) -> dict[str, Any]:
        return {"recorder": None, "phase": self.phase, "default_seed": self.default_seed, "resources": self.resources}

    def __init__(
        self, recorder: StudyRecorder, *, phase: Phase, default_seed: int, resources: dict[str, float]
    ) -> None:
        self.recorder = recorder
        self.phase: Phase = phase
        self.default_seed = default_seed
        self.resources = resources

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        config, seed = trial_job(trial.config)
        source = trial.config.get("reseed", {}).get("source_trial_id")
        self.recorder.trial_started(
            trial.trial_id,
            config=config,
            seed=self.default_seed if seed is None else seed,
            phase=self.phase,
            resources=self.resources,
            source_trial_id=source,
        )

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        self.recorder.trial_result(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.recorder.trial_completed(trial.trial_id, trial.last_result)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.recorder.trial_retried(trial.trial_id, _error_text(trial))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.recorder.trial_failed(trial.trial_id, _error_text(trial))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Trials a resumed run restored as already finished never pass through the callbacks above."""
        for trial in trials:
            if trial.trial_id in self.recorder.trials or trial.status not in (Trial.TERMINATED, Trial.ERROR):
                continue
            config, seed = trial_job(trial.config)
            error = _error_text(trial) if trial.status == Trial.ERROR else None
            self.recorder.replay(
                trial.trial_id,
                config=config,
                seed=self.default_seed if seed is None else seed,
                phase=self.phase,
                last=trial.last_result,
                error=error,
            )


def _error_text(trial: Trial) -> str:
    """The traceback(s) Tune wrote for the trial. Read from the driver-side file, which is written before
    the callbacks run (the storage copy behind ``trial.get_error()`` is synced later)."""
    path = trial.error_file
    if path and Path(path).is_file():
        text = Path(path).read_text(errors="replace").strip()
        if text:
            return text
    return f"trial {trial.trial_id} raised, and Ray Tune recorded no traceback"


# The live study behind each running experiment, by experiment path. Tune pickles its stopper into the
# experiment checkpoint and, on resume, restores that pickle instead of the stopper it is given; keyed
# by path, the restored stopper finds the study that runs now.
_LIVE: dict[str, tuple[Callable[[], bool] | None, StudyRecorder]] = {}


@contextlib.contextmanager
def live_study(experiment: str, should_stop: Callable[[], bool] | None, recorder: StudyRecorder) -> Iterator[None]:
    """Make ``should_stop`` and ``recorder`` the ones the experiment at ``experiment`` answers to."""
    _LIVE[experiment] = (should_stop, recorder)
    try:
        yield
    finally:
        _LIVE.pop(experiment, None)


class CancelStopper(tune.Stopper):
    """Stops the whole experiment as soon as the study's ``should_stop()`` says so; Tune polls it every loop
    turn, so running trials are torn down within about a second of the request."""

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        should_stop, recorder = _LIVE.get(self.experiment, (None, None))
        if recorder is None:
            return False
        if should_stop is not None and not recorder.cancelling and should_stop():
            recorder.cancelling = True
        return recorder.cancelling
