"""The number each report hands ASHA and Optuna, and the study checks pydantic cannot make. No Ray cluster."""

from __future__ import annotations

import pytest

from optforge.search.runner import validate_study
from optforge.search.trainable import ObjectiveTracker, TrialSettings
from optforge.spec import MetricPoint, SpecError, StudySpec, TaskSpec, TrialResult, TrialStatus


def point(step: int, val_loss: float, acc: float = 0.5) -> MetricPoint:
    return MetricPoint(
        step=step,
        train_loss=val_loss,
        val_loss=val_loss,
        val_accuracy=acc,
        lr=1e-3,
        examples_per_s=1.0,
        wall_time=step / 10,
    )


def tracker(objective: str = "final", **task: object) -> ObjectiveTracker:
    spec = TaskSpec.model_validate({"steps": 100, "eval_every": 10, **task})
    return ObjectiveTracker(TrialSettings(task=spec, objective=objective))  # type: ignore[arg-type]


def test_final_objective_is_the_metric_negated_when_maximized() -> None:
    assert tracker().point(point(10, 0.7)) == 0.7
    assert tracker(metric="val_accuracy").point(point(10, 0.7, acc=0.9)) == -0.9


def test_a_branched_point_is_judged_instead_of_the_raw_one() -> None:
    assert tracker().point(point(30, 0.7), judged=point(30, 0.4)) == 0.4


def test_time_to_target_scores_reaching_early_best_and_remembers_when_it_was_reached() -> None:
    fast, slow = tracker("time_to_target", target=0.5), tracker("time_to_target", target=0.5)
    assert fast.point(point(10, 0.9)) > 1  # not reached yet: ordered by metric, above every reacher
    reached_fast = fast.point(point(20, 0.45))
    slow.point(point(20, 0.9))
    reached_slow = slow.point(point(40, 0.49))
    assert reached_fast < reached_slow < 1
    assert fast.point(point(30, 0.6)) == reached_fast  # a later, worse point does not undo reaching it


def test_a_diverged_result_is_told_a_finite_penalty_scaled_by_its_initial_loss() -> None:
    result = TrialResult(status=TrialStatus.DIVERGED, steps=4, info={"initial_loss": 2.0})
    assert tracker(divergence_factor=10).final(result) == 20.0


def test_time_to_target_needs_a_target() -> None:
    spec = StudySpec.model_validate({"search": {"objective": "time_to_target"}})
    with pytest.raises(SpecError, match=r"task\.target"):
        validate_study(spec)
