"""How trials and seed groups are ordered, and the single number Optuna and ASHA minimize. Pure functions.

Order of a study's trials, best first:

- ``final`` objective: completed trials by their final metric; then pruned trials (more steps first,
  then by metric: they were judged at fewer steps and are not comparable to finished ones); then
  cancelled; then diverged; then failed.
- ``time_to_target``: trials that reached ``task.target`` by the steps (or seconds) they took; then
  those that did not, by their final metric; then pruned, cancelled, diverged, failed as above.

The *objective* handed to Optuna and ASHA is always minimized and always finite: the metric itself
(negated when the task maximizes it), a squashed score for time-to-target, and a penalty for
diverged trials so that TPE learns where the space blows up instead of sampling there again.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from optforge.spec import TrialResult, TrialStatus

Mode = Literal["min", "max"]
Objective = Literal["final", "time_to_target"]
TimeUnit = Literal["steps", "seconds"]
T = TypeVar("T")

_AFTER_FINISHED = {
    TrialStatus.PRUNED: 2,
    TrialStatus.CANCELLED: 3,
    TrialStatus.RUNNING: 3,
    TrialStatus.QUEUED: 3,
    TrialStatus.DIVERGED: 4,
    TrialStatus.FAILED: 5,
}
# Penalty when a diverged trial never produced a finite loss: far above any real loss, still finite.
FALLBACK_PENALTY = 1e6


def signed(value: float, mode: Mode) -> float:
    """``value`` as a quantity to minimize."""
    return value if mode == "min" else -value


def time_to_target(result: TrialResult, unit: TimeUnit) -> float | None:
    """The steps or seconds ``result`` took to reach the target, or None if it never did."""
    value = result.step_reached_target if unit == "steps" else result.seconds_reached_target
    return None if value is None else float(value)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sort_key(result: TrialResult, *, mode: Mode, objective: Objective = "final", unit: TimeUnit = "steps") -> tuple:
    """A key that sorts trial results best first (see the module docstring for the order)."""
    status = result.status
    metric = signed(result.final, mode) if _finite(result.final) else math.inf
    if status in (TrialStatus.DIVERGED, TrialStatus.FAILED):
        return (_AFTER_FINISHED[status], 0.0, 0.0)
    if objective == "time_to_target" and (reached := time_to_target(result, unit)) is not None:
        return (0, reached, metric)
    if status == TrialStatus.COMPLETED:
        return (1, metric, 0.0)
    return (_AFTER_FINISHED.get(status, 3), -float(result.steps), metric)


def rank(
    items: Sequence[T],
    result_of: Callable[[T], TrialResult],
    *,
    mode: Mode,
    objective: Objective = "final",
    unit: TimeUnit = "steps",
) -> list[T]:
    """``items`` sorted best first by the result each one carries (stable for ties)."""
    return sorted(items, key=lambda item: sort_key(result_of(item), mode=mode, objective=objective, unit=unit))


def is_candidate(result: TrialResult, *, objective: Objective = "final", unit: TimeUnit = "steps") -> bool:
    """Whether ``result`` may be called the study's best: it ran its whole budget, or reached the target."""
    if result.status == TrialStatus.COMPLETED and _finite(result.final):
        return True
    return (
        objective == "time_to_target"
        and result.status not in (TrialStatus.DIVERGED, TrialStatus.FAILED)
        and (time_to_target(result, unit) is not None)
    )


# ---- the number Optuna and ASHA minimize ------------------------------------------------------------


def target_score(reached: float | None, metric: float | None, *, mode: Mode, scale: float) -> float:
    """Time-to-target as one minimized number: ``t / (t + scale)`` in [0, 1) when the target was reached,
    else ``1 + squash(metric)`` in (1, 2), so every trial that reached it beats every one that did not,
    and those that did not are ordered by their metric. ``scale`` is the step budget (or 1 s)."""
    if reached is not None:
        return reached / (reached + scale)
    if not _finite(metric):
        return 2.0
    return 1.5 + math.atan(signed(metric, mode)) / math.pi  # type: ignore[arg-type]


def divergence_penalty(result: TrialResult, *, mode: Mode, objective: Objective, divergence_factor: float) -> float:
    """The finite objective Optuna is told for a diverged trial.

    ``final``/min: ``divergence_factor x`` the trial's initial training loss (else its first finite
    metric) — the level at which the trainer calls a run diverged, so it is worse than any trial that was not, and on the task's own
    scale (a huge constant would wreck the GP sampler's standardization). ``final``/max: the worst
    possible accuracy, 0. ``time_to_target``: 2, the top of the score's range.
    """
    if objective == "time_to_target":
        return 2.0
    if mode == "max":
        return 0.0
    initial = result.info.get("initial_loss")
    if isinstance(initial, (int, float)) and math.isfinite(initial) and initial > 0:
        return divergence_factor * float(initial)
    for point in result.curve:
        value = point.metric(result.metric)
        if value is None:
            value = point.train_loss
        if _finite(value) and value > 0:
            return divergence_factor * float(value)
    return FALLBACK_PENALTY


# ---- multi-seed -------------------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite ``values`` (std is None for fewer than two)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None, None
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


def seed_group_key(
    results: Sequence[TrialResult], *, mode: Mode, objective: Objective = "final", unit: TimeUnit = "steps"
) -> tuple:
    """A key that sorts groups of one configuration's runs (one per seed) best first.

    ``final``: by the mean final metric over the runs that completed; a group with a diverged or failed
    seed ranks after every group without one. ``time_to_target``: groups whose every seed reached the
    target, by mean time; then the rest by mean final metric.
    """
    broken = sum(r.status in (TrialStatus.DIVERGED, TrialStatus.FAILED) for r in results)
    finals = [signed(r.final, mode) for r in results if r.status == TrialStatus.COMPLETED and _finite(r.final)]
    mean_final = statistics.fmean(finals) if finals else math.inf
    if objective == "time_to_target":
        times = [time_to_target(r, unit) for r in results]
        if times and all(t is not None for t in times):
            return (broken, 0, statistics.fmean(times), mean_final)  # type: ignore[arg-type]
        return (broken, 1, mean_final, 0.0)
    return (broken, 0, mean_final, 0.0)
