"""Whole studies on the session's local Ray: the acceptance study, failures, divergence and cancellation.

Trials are tiny (an MLP of width 32 on digits, 60 steps) so each study takes seconds on 2 cores.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from optforge.engine.data import load_data
from optforge.engine.trainer import run_trial
from optforge.search import run_study
from optforge.spec import StudyEvent, StudyEventKind, StudySpec, TrialConfig, TrialStatus

TASK = {"model": {"name": "mlp", "width": 32}, "data": {"name": "digits"}, "steps": 60, "eval_every": 15}
pytestmark = pytest.mark.usefixtures("ray_session")


def study(search: dict, task: dict | None = None, name: str = "test") -> StudySpec:
    return StudySpec.model_validate({"name": name, "task": task or TASK, "search": search})


@pytest.fixture(scope="module")
def acceptance() -> tuple:
    """The acceptance study: 12 trials over 4 families and 2 schedules with ASHA, one of them forced to diverge."""
    events: list[StudyEvent] = []
    spec = study(
        {
            "n_trials": 12,
            "families": ["adamw", "sgd", "lion", "muon"],
            "schedules": ["cosine", "wsd"],
            "early_stopping": "asha",
            "initial_configs": [{"family": "sgd", "hparams": {"lr": 5.0}, "schedule": "cosine"}],
            "seed": 1,
        }
    )
    started = time.perf_counter()
    result = run_study(spec, reporter=events.append)
    return spec, result, events, time.perf_counter() - started


def test_acceptance_study_runs_every_trial_within_two_minutes(acceptance: tuple) -> None:
    spec, result, _, seconds = acceptance
    assert result.status == "completed"
    assert len(result.trials) == spec.search.n_trials
    assert len({t.config.family for t in result.trials}) >= 3
    assert len({t.config.schedule for t in result.trials}) >= 2
    assert seconds < 120


def test_best_configuration_beats_adamw_defaults(acceptance: tuple) -> None:
    spec, result, _, _ = acceptance
    baseline = run_trial(spec.task, TrialConfig(family="adamw", schedule="cosine"), dataset=load_data(spec.task.data))
    assert baseline.status == TrialStatus.COMPLETED
    assert result.best is not None and result.best.status == TrialStatus.COMPLETED
    assert result.best_value == result.best.result.final
    assert result.best_value < baseline.final


def test_asha_prunes_trials_at_the_first_rung(acceptance: tuple) -> None:
    _, result, events, _ = acceptance
    started = next(e for e in events if e.kind == StudyEventKind.STARTED)
    first_rung = started.data["rungs"][0]
    pruned = [t for t in result.trials if t.status == TrialStatus.PRUNED]
    assert pruned, "ASHA stopped no trial"
    assert all(t.result.steps < 60 for t in pruned)
    assert all(t.result.steps >= first_rung for t in pruned)


def test_diverged_trial_is_recorded_ranks_last_and_the_study_goes_on(acceptance: tuple) -> None:
    _, result, _, _ = acceptance
    diverged = [t for t in result.trials if t.status == TrialStatus.DIVERGED]
    forced = [t for t in diverged if t.config.family == "sgd" and t.config.hparams.get("lr") == 5.0]
    assert forced, [(t.config.family, t.config.hparams, t.status) for t in result.trials]
    assert result.trials[-len(diverged) :] == diverged  # nothing ranks below a diverged trial
    # Optuna was told a finite penalty, worse than anything a trial that did not diverge reported
    others = [t.value for t in result.trials if t.status != TrialStatus.DIVERGED and t.value is not None]
    assert all(t.value is not None and math.isfinite(t.value) and t.value > max(others) for t in diverged)
    assert "divergence_factor" in (forced[0].result.error or "")


def test_events_cover_the_study_and_every_trial(acceptance: tuple) -> None:
    _, result, events, _ = acceptance
    kinds = [e.kind for e in events]
    assert kinds[0] == StudyEventKind.STARTED and kinds[-1] == StudyEventKind.FINISHED
    started = {e.trial_id for e in events if e.kind == StudyEventKind.TRIAL_STARTED}
    finished = {e.trial_id: e for e in events if e.kind == StudyEventKind.TRIAL_FINISHED}
    assert started == set(finished) == {t.trial_id for t in result.trials}
    for trial in result.trials:
        assert finished[trial.trial_id].data["status"] == trial.status.value
        assert trial.result.info.get("node_id")  # issue 10 places trials by node
    points = [e for e in events if e.kind == StudyEventKind.TRIAL_RESULT]
    assert all("val_loss" in e.data["point"] and e.data["objective"] is not None for e in points)
    best_events = [e for e in events if e.kind == StudyEventKind.BEST_CHANGED]
    assert best_events and best_events[-1].trial_id == result.best_trial_id
    assert events[-1].data["best_config"] == result.best_config.model_dump(mode="json")


def test_a_trial_that_raises_is_retried_once_then_marked_failed_with_its_traceback(tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    task = {
        **TASK,
        "model": {
            "entrypoint": "tests.search.flaky_model:build",
            "kwargs": {"counter": str(counter), "fail_calls": [1, 2]},
        },
    }
    spec = study({"n_trials": 1, "families": ["adamw"], "schedules": ["cosine"], "early_stopping": "none"}, task=task)
    events: list[StudyEvent] = []
    result = run_study(spec, reporter=events.append)
    (failed,) = result.trials
    assert failed.status == TrialStatus.FAILED and failed.attempts == 2
    assert len(counter.read_text().splitlines()) == 2  # the model was built once per attempt
    assert "Traceback" in failed.result.error
    assert "call 1 fails on purpose" in failed.result.error and "call 2 fails on purpose" in failed.result.error
    finished = [e for e in events if e.kind == StudyEventKind.TRIAL_FINISHED]
    assert [e.data["status"] for e in finished] == ["failed"] and finished[0].data["attempts"] == 2
    assert result.status == "completed"


def test_cancellation_stops_running_trials_within_seconds() -> None:
    long_task = {**TASK, "steps": 20_000, "eval_every": 100}
    spec = study({"n_trials": 8, "families": ["adamw"], "schedules": ["constant"]}, task=long_task)
    first_point = threading.Event()
    asked: list[float] = []

    def should_stop() -> bool:
        if first_point.is_set() and not asked:
            asked.append(time.perf_counter())
        return bool(asked)

    def reporter(event: StudyEvent) -> None:
        if event.kind == StudyEventKind.TRIAL_RESULT:
            first_point.set()

    result = run_study(spec, reporter=reporter, should_stop=should_stop)
    assert asked, "the study ended before any trial reported"
    # About 2 s on a quiet 2-core machine; the bound leaves room for a loaded CI box, while one trial
    # of 20 000 steps would take minutes.
    assert time.perf_counter() - asked[0] < 20
    assert result.status == "cancelled"
    assert any(t.status == TrialStatus.CANCELLED for t in result.trials)
    assert all(t.result.steps < 20_000 for t in result.trials)


class DriverCrash(Exception):
    """Stands in for the driver process dying mid-study."""


def test_a_study_whose_driver_died_resumes_from_its_storage_and_keeps_earlier_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tune saves its experiment state every few seconds; at every loop turn here, so that the crash
    # below always finds the first finished trial saved.
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")
    spec = study(
        {
            "n_trials": 4,
            "families": ["adamw", "lion"],
            "schedules": ["cosine"],
            "early_stopping": "none",
            "max_concurrent": 1,
        },
        name="resumable",
    )
    done_before: set[str] = set()
    started_after: list[str] = []

    def reporter(event: StudyEvent) -> None:
        if event.kind == StudyEventKind.TRIAL_FINISHED:
            done_before.add(event.trial_id or "")
        elif event.kind == StudyEventKind.TRIAL_STARTED and done_before:
            started_after.append(event.trial_id or "")

    def crash() -> bool:  # dies while the second trial runs, after Tune saved the first one as finished
        if started_after:
            raise DriverCrash
        return False

    with pytest.raises(DriverCrash):
        run_study(spec, reporter=reporter, should_stop=crash, storage_path=tmp_path)
    assert done_before

    resumed_events: list[StudyEvent] = []
    resumed = run_study(spec, reporter=resumed_events.append, storage_path=tmp_path, resume=True)
    assert resumed.status == "completed"
    assert len(resumed.trials) == 4
    assert all(t.status == TrialStatus.COMPLETED for t in resumed.trials)
    assert done_before <= {t.trial_id for t in resumed.trials}
    rerun = {e.trial_id for e in resumed_events if e.kind == StudyEventKind.TRIAL_STARTED}
    assert not rerun & done_before  # finished trials are not trained again


def _stored_trial_ids(experiment: Path) -> list[str]:
    state = sorted(experiment.glob("experiment_state-*.json"))
    return [json.loads(t[0])["trial_id"] for t in json.loads(state[-1].read_text())["trial_data"]] if state else []


@pytest.mark.timeout(240)  # without the repair the resume waits for a suggestion forever
def test_a_resume_from_a_save_torn_between_trials_and_searcher_still_runs_every_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tune copies its saved trials and its searcher to storage in the background; a driver killed during a
    copy leaves a searcher that counts a running trial the saved trials do not have (the CI hang)."""
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")
    spec = study(
        {"n_trials": 4, "families": ["adamw"], "schedules": ["cosine"], "early_stopping": "none", "max_concurrent": 1},
        name="torn",
    )
    experiment = tmp_path / "torn"
    finished: set[str] = set()
    second_points: list[str] = []

    def reporter(event: StudyEvent) -> None:
        if event.kind == StudyEventKind.TRIAL_FINISHED:
            finished.add(event.trial_id or "")
        elif event.kind == StudyEventKind.TRIAL_RESULT and finished and event.trial_id not in finished:
            second_points.append(event.trial_id or "")

    def crash() -> bool:  # dies at the second trial's second point: Tune has saved it running by then
        if len(second_points) >= 2:
            raise DriverCrash
        return False

    with pytest.raises(DriverCrash):
        run_study(spec, reporter=reporter, should_stop=crash, storage_path=tmp_path)
    running = second_points[0]
    deadline = time.monotonic() + 30
    while running not in _stored_trial_ids(experiment) and time.monotonic() < deadline:
        time.sleep(0.2)  # the last background copy may still be on its way
    assert running in _stored_trial_ids(experiment), "Tune never copied the running trial to storage"
    # The torn save: the trials as they were before the running one was suggested, the searcher after.
    state_file = sorted(experiment.glob("experiment_state-*.json"))[-1]
    state = json.loads(state_file.read_text())
    state["trial_data"] = [t for t in state["trial_data"] if json.loads(t[0])["trial_id"] != running]
    state_file.write_text(json.dumps(state))

    resumed = run_study(spec, storage_path=tmp_path, resume=True)
    assert resumed.status == "completed"
    assert len(resumed.trials) == 4 and all(t.status == TrialStatus.COMPLETED for t in resumed.trials)
    ids = {t.trial_id for t in resumed.trials}
    assert finished <= ids and running not in ids
