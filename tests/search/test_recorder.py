"""The driver-side recorder: events, statuses and the best trial, driven without Ray."""

from __future__ import annotations

from optforge.search.recorder import StudyRecorder
from optforge.spec import MetricPoint, StudyEvent, StudyEventKind, TrialConfig, TrialResult, TrialStatus


def point(step: int, val: float) -> str:
    return MetricPoint(
        step=step, train_loss=val, val_loss=val, lr=1e-3, examples_per_s=1, wall_time=step
    ).model_dump_json()


def final(status: str, value: float | None, steps: int = 60) -> str:
    return TrialResult(status=TrialStatus(status), final=value, steps=steps).model_dump_json()


def test_trials_that_end_without_their_own_result_are_pruned_and_best_follows_completed_trials() -> None:
    events: list[StudyEvent] = []
    rec = StudyRecorder(metric="val_loss", mode="min", reporter=events.append)
    for tid in ("a", "b", "c"):
        rec.trial_started(tid, config=TrialConfig(), seed=0, phase="search")
    rec.trial_result("a", {"objective": 1.0, "point": point(15, 1.0), "node_id": "n1"})
    rec.trial_completed("a", {"objective": 1.0})  # stopped by ASHA after its first rung
    rec.trial_result("b", {"objective": 0.5, "point": point(15, 0.5)})
    rec.trial_completed("b", {"objective": 0.4, "trial_result": final("completed", 0.4)})
    rec.trial_completed("c", {"objective": 0.3, "trial_result": final("completed", 0.3)})
    ranked = rec.ranked("search")
    assert [t.trial_id for t in ranked] == ["c", "b", "a"]
    assert ranked[2].status == TrialStatus.PRUNED and ranked[2].result.steps == 15
    assert ranked[2].result.info["node_id"] == "n1"
    best = [e.trial_id for e in events if e.kind == StudyEventKind.BEST_CHANGED]
    assert best == ["b", "c"]


def test_a_retried_trial_starts_its_curve_over_and_a_failure_keeps_every_traceback() -> None:
    rec = StudyRecorder(metric="val_loss", mode="min")
    rec.trial_started("a", config=TrialConfig(), seed=0, phase="search")
    rec.trial_result("a", {"objective": 1.0, "point": point(15, 1.0)})
    rec.trial_retried("a", "Traceback: first")
    rec.trial_started("a", config=TrialConfig(), seed=0, phase="search")
    rec.trial_failed("a", "Traceback: first\nTraceback: second")
    trial = rec.ranked("search")[0]
    assert trial.status == TrialStatus.FAILED and trial.attempts == 2
    assert trial.result.curve == [] and "second" in trial.result.error


def test_cancelled_study_marks_running_trials_cancelled() -> None:
    rec = StudyRecorder(metric="val_loss", mode="min")
    rec.trial_started("a", config=TrialConfig(), seed=0, phase="search")
    rec.trial_result("a", {"objective": 1.0, "point": point(15, 1.0)})
    rec.cancelling = True
    rec.finish_unfinished()
    assert rec.ranked("search")[0].status == TrialStatus.CANCELLED


def test_a_reporter_that_raises_does_not_stop_the_study() -> None:
    def broken(event: StudyEvent) -> None:
        raise RuntimeError("database is down")

    rec = StudyRecorder(metric="val_loss", mode="min", reporter=broken)
    rec.trial_started("a", config=TrialConfig(), seed=0, phase="search")
    rec.trial_completed("a", {"trial_result": final("completed", 0.2)})
    assert rec.best() is not None and rec.best().trial_id == "a"
