"""The repair of a search restored from a torn save (see optforge.search.tune_resume), part by part."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

pytest.importorskip("ray")

from ray.tune.experiment import Trial

from optforge.search.tune_resume import RestoredSearch, StudySearcher, agree_with_trials, build_search


def space(trial: optuna.Trial) -> dict[str, float]:  # module level: Tune pickles the searcher with it
    return {"x": trial.suggest_float("x", 0.0, 1.0)}


def searcher() -> StudySearcher:
    return StudySearcher(space=space, metric="objective", mode="min")


def trial(trial_id: str, status: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, status=status)


def test_a_searcher_saved_ahead_of_the_trials_forgets_the_trial_they_lack() -> None:
    search = build_search(searcher(), max_concurrent=1)
    search.searcher.suggest("a")
    search.searcher.on_trial_complete("a", {"objective": 1.0})
    assert search.searcher.suggest("b") is not None  # "b" running: the limiter is full
    search._counter = 2
    assert search.searcher.suggest("c") is None

    agree_with_trials(search, [trial("a", Trial.TERMINATED)])  # the trials were saved before "b"

    assert search._counter == 1 and search.searcher.live_trials == set()
    assert search.searcher.suggest("c") is not None


def test_a_searcher_saved_behind_the_trials_counts_the_running_one() -> None:
    search = build_search(searcher(), max_concurrent=1)
    search.searcher.suggest("a")
    search.searcher.on_trial_complete("a", {"objective": 1.0})
    search._counter = 1

    agree_with_trials(search, [trial("a", Trial.TERMINATED), trial("b", Trial.PENDING), trial("x", Trial.ERROR)])

    assert search._counter == 3
    assert search.searcher.live_trials == {"b"} and search.searcher.num_unfinished_live_trials == 1
    assert search.searcher.suggest("c") is None  # "b" runs: no more than max_concurrent
    search.searcher.on_trial_complete("b", {"objective": 0.5})
    assert search.searcher.suggest("c") is not None


def test_optuna_leaves_out_a_trial_it_never_suggested_and_still_learns_the_others() -> None:
    study_searcher = searcher()
    study_searcher.suggest("a")
    study_searcher.on_trial_result("stranger", {"objective": 0.1, "training_iteration": 1})
    study_searcher.on_trial_complete("stranger", {"objective": 0.1})
    study_searcher.on_trial_complete("a", {"objective": 2.0})
    told = study_searcher._ot_study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert [t.value for t in told] == [2.0]


def test_without_a_limit_the_search_has_no_limiter() -> None:
    search = build_search(searcher(), max_concurrent=0)
    assert isinstance(search.searcher, StudySearcher)
    agree_with_trials(search, [trial("a", Trial.RUNNING)])
    assert search._counter == 1


def test_a_study_saved_before_the_repair_existed_resumes_unrepaired() -> None:
    limiter = build_search(searcher(), max_concurrent=1).searcher  # what Tune pickled before build_search
    limiter.suggest("b")
    RestoredSearch(limiter).on_step_begin(0, [trial("a", Trial.TERMINATED)])
    assert limiter.live_trials == {"b"}


def test_a_count_saved_ahead_of_the_trials_cannot_end_the_resumed_study_before_the_repair(tmp_path) -> None:
    saved = build_search(searcher(), max_concurrent=1)
    saved._total_samples = 2
    saved.searcher.suggest("a")
    saved.searcher.on_trial_complete("a", {"objective": 1.0})
    saved.searcher.suggest("b")
    saved._counter = 2  # the last trial suggested; the trials' file was saved before it
    saved.save_to_dir(str(tmp_path), session_str="s")
    assert saved.is_finished()

    restored = build_search(searcher(), max_concurrent=1)
    restored.restore_from_dir(str(tmp_path))
    assert restored._counter == 2 and not restored.is_finished()  # Tune asks before the first loop turn
    agree_with_trials(restored, [trial("a", Trial.TERMINATED)])
    assert not restored.is_finished() and restored.searcher.suggest("c") is not None
    restored._counter += 1
    assert restored.is_finished()
