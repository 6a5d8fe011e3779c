"""Ranking and the minimized objective: pure functions, no Ray."""

from __future__ import annotations

import math

import pytest

from optforge.search import ranking
from optforge.spec import MetricPoint, TrialResult, TrialStatus


def result(
    status: str,
    final: float | None = None,
    steps: int = 100,
    reached: int | None = None,
    seconds: float | None = None,
    curve: list[float] | None = None,
    **info: float,
) -> TrialResult:
    points = [
        MetricPoint(step=10 * (i + 1), train_loss=v, val_loss=v, lr=1e-3, examples_per_s=1.0, wall_time=i)
        for i, v in enumerate(curve or [])
    ]
    return TrialResult(
        status=TrialStatus(status),
        final=final,
        steps=steps,
        step_reached_target=reached,
        seconds_reached_target=seconds,
        curve=points,
        info=info,
    )


def order(results: list[TrialResult], **kwargs: object) -> list[int]:
    indexed = list(enumerate(results))
    return [i for i, _ in ranking.rank(indexed, lambda item: item[1], **kwargs)]  # type: ignore[arg-type]


def test_completed_trials_rank_by_final_metric_then_pruned_then_diverged_then_failed() -> None:
    trials = [
        result("failed"),
        result("diverged", steps=5),
        result("pruned", 0.5, steps=30),
        result("completed", 0.9),
        result("pruned", 0.7, steps=90),
        result("completed", 0.4),
    ]
    assert order(trials, mode="min") == [5, 3, 4, 2, 1, 0]


def test_maximized_metrics_rank_the_largest_first() -> None:
    assert order([result("completed", 0.8), result("completed", 0.95)], mode="max") == [1, 0]


def test_time_to_target_ranks_reachers_by_time_then_the_rest_by_metric() -> None:
    trials = [
        result("completed", 0.20),  # never reached: best metric of those that did not
        result("completed", 0.10, reached=80),
        result("completed", 0.05, reached=40),
        result("completed", 0.30),
        result("diverged", reached=10),  # reached, then diverged: still last
    ]
    assert order(trials, mode="min", objective="time_to_target") == [2, 1, 0, 3, 4]


def test_time_to_target_in_seconds_uses_wall_clock() -> None:
    trials = [result("completed", 0.1, reached=10, seconds=9.0), result("completed", 0.1, reached=50, seconds=2.0)]
    assert order(trials, mode="min", objective="time_to_target", unit="seconds") == [1, 0]
    assert order(trials, mode="min", objective="time_to_target", unit="steps") == [0, 1]


def test_target_score_puts_every_reacher_before_every_non_reacher() -> None:
    reached = [ranking.target_score(t, 0.9, mode="min", scale=100) for t in (1, 50, 100, 10_000)]
    missed = [ranking.target_score(None, m, mode="min", scale=100) for m in (-5.0, 0.01, 3.0, 1e9)]
    assert reached == sorted(reached) and missed == sorted(missed)
    assert max(reached) < 1 < min(missed) and max(missed) <= 2


def test_divergence_penalty_is_finite_and_above_any_loss_that_did_not_diverge() -> None:
    diverged = result("diverged", steps=7, initial_loss=2.3)
    penalty = ranking.divergence_penalty(diverged, mode="min", objective="final", divergence_factor=10)
    assert penalty == pytest.approx(23.0)
    from_curve = result("diverged", curve=[2.0, 1.5])
    assert ranking.divergence_penalty(from_curve, mode="min", objective="final", divergence_factor=10) == 20.0
    nothing = result("diverged", steps=1)
    assert math.isfinite(ranking.divergence_penalty(nothing, mode="min", objective="final", divergence_factor=10))
    assert ranking.divergence_penalty(nothing, mode="max", objective="final", divergence_factor=10) == 0.0
    assert ranking.divergence_penalty(nothing, mode="min", objective="time_to_target", divergence_factor=10) == 2.0


def test_only_completed_or_target_reaching_trials_can_be_the_best() -> None:
    assert ranking.is_candidate(result("completed", 0.3))
    assert not ranking.is_candidate(result("pruned", 0.1))
    assert not ranking.is_candidate(result("completed", math.nan))
    assert ranking.is_candidate(result("pruned", 0.1, reached=20), objective="time_to_target")
    assert not ranking.is_candidate(result("diverged", reached=20), objective="time_to_target")


def test_seed_groups_rank_by_mean_and_a_diverged_seed_sinks_a_group() -> None:
    steady = [result("completed", 0.30), result("completed", 0.32)]
    lucky = [result("completed", 0.10), result("completed", 0.60)]  # mean 0.35
    broken = [result("completed", 0.05), result("diverged")]
    keys = [ranking.seed_group_key(g, mode="min") for g in (lucky, broken, steady)]
    assert sorted(range(3), key=keys.__getitem__) == [2, 0, 1]


def test_mean_std_reports_sample_std_and_ignores_non_finite_values() -> None:
    mean, std = ranking.mean_std([1.0, 3.0, math.inf])
    assert mean == 2.0 and std == pytest.approx(math.sqrt(2.0))
    assert ranking.mean_std([1.0]) == (1.0, None)
    assert ranking.mean_std([]) == (None, None)
