"""Schedule-aware ASHA: judge each rung on a cooldown branched off the trial's current state.

A plain ASHA rung compares trials mid-schedule: a WSD or constant-LR trial is still at its peak LR
(noisy, high loss) while a cosine trial has already decayed a good part of the way, so the rung favours
early decay, not the configuration that ends best (Determined's docs warn about exactly this; so do
Wen et al. 2025: "rankings flip during LR decay"). WSD makes a fairer comparison cheap (Hägele et
al. 2024): at rung step ``r`` snapshot model and optimizer, cool down over ``branch_fraction x r``
steps from the current LR to the schedule's floor (WSD's own cooldown shape, linear for other
schedules), evaluate, and restore the snapshot. The rung then sees the loss a run of
about ``r`` steps would end with; the main run continues untouched (its batches and RNG are not
consumed by the branch), so its curve is bit-identical to an unbranched run.

Cost: ``branch_fraction x (sum of rungs)`` extra steps per trial that reaches them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from optforge.catalog import get_family
from optforge.engine.data import Dataset
from optforge.engine.evaluation import evaluate
from optforge.engine.optimizers import evaluation_mode, make_stepper
from optforge.engine.trainer import EVAL_CHUNK, TrainingState, run_trial
from optforge.spec import MetricPoint, TaskSpec, TrialConfig, TrialResult

BranchedReport = Callable[[int, MetricPoint, MetricPoint | None], None]


def cooldown_shape(config: TrialConfig) -> Callable[[float], float]:
    """The branch's LR multiplier at cooldown progress ``q`` in [0, 1): WSD's own shape, else linear."""
    params = config.resolved_schedule_params()
    if config.schedule == "wsd" and params.get("cooldown") == "1-sqrt":
        return lambda q: 1.0 - math.sqrt(q)
    return lambda q: 1.0 - q


def branch_steps_for(step: int, fraction: float) -> int:
    """Cooldown length of a branch at ``step``: ``fraction`` of the steps taken, at least one."""
    return max(1, round(fraction * step))


def branched_metrics(state: TrainingState, config: TrialConfig, fraction: float) -> tuple[float, float | None]:
    """``(val_loss, val_accuracy)`` after a cooldown branched off ``state``, which is then restored exactly.

    The branch trains the live model and optimizer, then writes a snapshot back *in place*: the
    optimizer's ``state_dict()`` exposes its live per-parameter state, so restoring through it keeps
    every object the trainer and its LR scheduler hold. (``copy.deepcopy`` of an optimizer drops
    subclass attributes, and ``load_state_dict`` replaces the param-group dicts a composite optimizer
    shares with its parts.) Batches come from a copy of the stream, randomness from a forked RNG.
    """
    model, optimizer = state.model, state.optimizer
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_groups = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    stream = copy.copy(state.stream)  # shares the (read-only) data tensors, not the position
    stream.generator = torch.Generator().set_state(state.stream.generator.get_state())
    stepper = make_stepper(optimizer, get_family(config.family))
    floor = float(config.resolved_schedule_params().get("min_lr_ratio", 0.0))
    shape = cooldown_shape(config)
    starts = [(group["lr"], group.get("initial_lr", group["lr"]) * floor) for group in optimizer.param_groups]
    n = branch_steps_for(state.step, fraction)
    device = state.x_eval.device
    batch: list[torch.Tensor] = []

    def loss_fn() -> torch.Tensor:
        with state.precision():
            return state.criterion(model(batch[0]), batch[1])

    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # dropout stays in step
            for i in range(n):
                factor = shape(i / n)
                for group, (start, end) in zip(optimizer.param_groups, starts, strict=True):
                    group["lr"] = end + (start - end) * factor
                batch[:] = stream.next()
                stepper(loss_fn)
            model.eval()
            with evaluation_mode(optimizer):
                return evaluate(
                    model,
                    state.x_eval,
                    state.y_eval,
                    state.kind,  # type: ignore[arg-type]
                    chunk_size=EVAL_CHUNK,
                    precision=state.precision,
                )
    finally:
        model.train()
        model.load_state_dict(saved_model)
        restore_in_place(optimizer.state_dict(), saved_optimizer)
        for group, saved in zip(optimizer.param_groups, saved_groups, strict=True):
            group.update(saved)


def restore_in_place(live: Any, saved: Any) -> None:
    """Write ``saved`` into the nested dicts/lists ``live`` without replacing them: tensors are copied
    into, containers are walked, other values assigned; keys the branch added are dropped."""
    if isinstance(live, dict):
        for key in [k for k in live if k not in saved]:
            del live[key]
        keys = list(saved)
    else:
        keys = list(range(min(len(live), len(saved))))
    for key in keys:
        old, new = (live.get(key) if isinstance(live, dict) else live[key]), saved[key]
        if isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old.shape == new.shape:
            old.copy_(new)
        elif isinstance(old, (dict, list)) and type(old) is type(new):
            restore_in_place(old, new)
        else:
            live[key] = new


def run_branched_trial(
    task: TaskSpec,
    config: TrialConfig,
    report: BranchedReport,
    *,
    dataset: Dataset | None,
    branch_steps: Sequence[int],
    branch_fraction: float,
) -> TrialResult:
    """``run_trial`` that, at each step in ``branch_steps``, also reports the branched ("judged") point.

    ``report(step, point, judged)``: ``point`` is the real evaluation (the curve), ``judged`` the same
    point with the branched validation metrics at rung steps, else None.
    """
    rungs = set(branch_steps)
    judged: dict[int, MetricPoint] = {}
    pending: dict[int, tuple[float, float | None]] = {}

    def on_eval(state: TrainingState) -> None:
        if state.step in rungs:
            pending[state.step] = branched_metrics(state, config, branch_fraction)

    def forward(step: int, point: MetricPoint) -> None:
        if step in pending:
            val_loss, val_accuracy = pending.pop(step)
            judged[step] = point.model_copy(update={"val_loss": val_loss, "val_accuracy": val_accuracy})
        report(step, point, judged.get(step))

    result = run_trial(task, config, forward, dataset=dataset, on_eval=on_eval)
    branched = {str(step): p.val_loss for step, p in judged.items()}
    return result.model_copy(update={"info": {**result.info, "branched_val_loss": branched}})
