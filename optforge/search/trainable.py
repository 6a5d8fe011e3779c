"""The function every Tune trial runs on a Ray worker: one engine trial, reported point by point.

Each evaluation becomes one ``tune.report`` carrying the step (ASHA's time attribute), the finite
minimized ``objective`` (what ASHA and Optuna compare) and the MetricPoint. When the trainer returns,
one last report carries the whole TrialResult, which is how the driver learns the status (completed,
diverged) and the exact curve. A ``failed`` result is raised instead, so Ray retries the trial.

ASHA stops a trial by raising ``SystemExit`` inside ``tune.report``; it unwinds through the trainer
(which catches ``Exception`` only), and the driver records the trial as pruned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ray
from ray import tune

from optforge.search import ranking
from optforge.search.tune_bridge import trial_job
from optforge.spec import MetricPoint, TaskSpec, TrialResult, TrialStatus


class TrialFailedError(RuntimeError):
    """A trial whose training raised. Raised in the worker so that Ray retries it (``max_retries``)."""


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one Tune run shares (sent to the object store once, with the dataset)."""

    task: TaskSpec
    objective: ranking.Objective = "final"
    unit: ranking.TimeUnit = "steps"
    cpus: float = 1.0
    branch_steps: tuple[int, ...] = ()  # wsd_branch: judge these rungs on a branched cooldown
    branch_fraction: float = 0.0


@dataclass
class ObjectiveTracker:
    """Turns each reported point into the finite number ASHA and Optuna minimize."""

    settings: TrialSettings
    reached: float | None = None

    @property
    def _scale(self) -> float:
        return float(self.settings.task.steps) if self.settings.unit == "steps" else 1.0

    def point(self, point: MetricPoint, judged: MetricPoint | None = None) -> float:
        """The objective at ``point``; ``judged`` (a branched evaluation) replaces the metric, never the
        time-to-target bookkeeping, which follows the real run."""
        task = self.settings.task
        value = _metric(point, task)
        if self.reached is None and task.target is not None and math.isfinite(value):
            hit = value <= task.target if task.mode == "min" else value >= task.target
            if hit:
                self.reached = float(point.step) if self.settings.unit == "steps" else point.wall_time
        if judged is not None:
            value = _metric(judged, task)
        if not math.isfinite(value):
            return ranking.FALLBACK_PENALTY if task.mode == "min" else 0.0
        if self.settings.objective == "time_to_target":
            return ranking.target_score(self.reached, value, mode=task.mode, scale=self._scale)
        return ranking.signed(value, task.mode)

    def final(self, result: TrialResult) -> float:
        task = self.settings.task
        if result.status == TrialStatus.DIVERGED or result.final is None or not math.isfinite(result.final):
            return ranking.divergence_penalty(
                result, mode=task.mode, objective=self.settings.objective, divergence_factor=task.divergence_factor
            )
        if self.settings.objective == "time_to_target":
            reached = ranking.time_to_target(result, self.settings.unit)
            return ranking.target_score(reached, result.final, mode=task.mode, scale=self._scale)
        return ranking.signed(result.final, task.mode)


def _metric(point: MetricPoint, task: TaskSpec) -> float:
    value = point.metric(task.metric)
    return point.train_loss if value is None else value


def run_tune_trial(config: dict[str, Any], *, settings: TrialSettings, dataset: Any = None) -> None:
    """The Tune function trainable. ``config`` holds ``trial_config`` (and ``seed`` for re-runs)."""
    from optforge.engine.trainer import run_trial  # the engine is imported on the worker, not in the driver

    trial_config, seed = trial_job(config)
    task = settings.task if seed is None else settings.task.model_copy(update={"seed": seed})
    node_id = ray.get_runtime_context().get_node_id()
    tracker = ObjectiveTracker(settings)
    _limit_threads(settings.cpus)

    def report(step: int, point: MetricPoint, judged: MetricPoint | None = None) -> None:
        metrics = {
            "step": step,
            "objective": tracker.point(point, judged),
            "point": point.model_dump_json(),
            "node_id": node_id,
        }
        if judged is not None:
            metrics["judged_val_loss"] = judged.val_loss
        tune.report(metrics)

    if settings.branch_steps:
        from optforge.search.branching import run_branched_trial

        result = run_branched_trial(
            task,
            trial_config,
            report,
            dataset=dataset,
            branch_steps=settings.branch_steps,
            branch_fraction=settings.branch_fraction,
        )
    else:
        result = run_trial(task, trial_config, report, dataset=dataset)
    if result.status == TrialStatus.FAILED:
        raise TrialFailedError(result.error or "training failed without a traceback")
    result = result.model_copy(update={"info": {**result.info, "node_id": node_id}})
    tune.report(
        {
            "step": max(result.steps, 1),
            "objective": tracker.final(result),
            "trial_result": result.model_dump_json(),
            "node_id": node_id,
        }
    )


def _limit_threads(cpus: float) -> None:
    """One intra-op thread per CPU the trial reserved: trials sharing a node must not oversubscribe it."""
    import torch

    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
