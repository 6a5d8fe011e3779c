"""The coordinate check (Yang et al. 2022, "Tensor Programs V", Section 9 / ``mup.coord_check``).

Train the same task at several widths for a few steps and record, at every step, the mean absolute
value of each layer's output coordinates. In a correct μP the curves of all widths lie on top of each
other; in the standard parametrization the layers after the first grow with width as soon as training
moves them (the readout first). A μP bug (a missing multiplier, a wrong LR rule) shows up as a curve
that climbs or falls with width.

Training here is the trainer's without its schedule: every step runs at the configuration's peak LR,
since a warmup would hide the first steps' blow-up that the check is looking for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from optforge.catalog import get_family
from optforge.engine.batches import MinibatchStream
from optforge.engine.data import Dataset, load_data
from optforge.engine.evaluation import loss_function
from optforge.engine.optimizers import build_optimizer, make_stepper
from optforge.engine.workloads import build_model
from optforge.spec import TaskSpec, TrialConfig

Parametrization = Literal["sp", "mup"]
DEFAULT_WIDTHS = (64, 128, 256, 512, 1024)  # a 16x range, as in the μP papers' coordinate checks
DEFAULT_STEPS = 5  # the blow-up of SP shows within a few steps at a usable LR; μP's readout settles in ~30


@dataclass(frozen=True)
class CoordRecord:
    """Mean |coordinate| of one layer's output, at one step (0: at initialization), for one width."""

    parametrization: Parametrization
    width: int
    step: int
    layer: str
    value: float


def _layers(model: nn.Module) -> dict[str, nn.Module]:
    """The modules whose outputs are recorded: every layer with a weight matrix (Linear, Conv, Embedding)."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | nn.Embedding | nn.modules.conv._ConvNd)
    }


def _check_one(
    task: TaskSpec, config: TrialConfig, data: Dataset, parametrization: Parametrization, width: int, steps: int
) -> list[CoordRecord]:
    mup = parametrization == "mup"
    sized = task.model_copy(update={"model": task.model.model_copy(update={"width": width})})
    with torch.random.fork_rng():
        torch.manual_seed(task.seed)
        model = build_model(sized, data, mup=mup)
        optimizer = build_optimizer(model, config.model_copy(update={"mup": mup}), total_steps=max(steps, 1))
        step_fn = make_stepper(optimizer, get_family(config.family))
        stream = MinibatchStream(data.x_train, data.y_train, task.batch_size, seed=task.seed)
        criterion = loss_function(data.kind)
        seen: dict[str, float] = {}
        hooks = [
            module.register_forward_hook(
                lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().abs().mean().item())
            )
            for name, module in _layers(model).items()
        ]
        records: list[CoordRecord] = []
        batch: list[torch.Tensor] = []

        def loss_fn() -> torch.Tensor:
            return criterion(model(batch[0]), batch[1])

        model.train()
        try:
            for step in range(steps + 1):
                batch[:] = stream.next()
                seen.clear()
                if step < steps:
                    step_fn(loss_fn)  # the forward of step t records the activations after t updates
                else:
                    with torch.no_grad():
                        loss_fn()
                records += [CoordRecord(parametrization, width, step, name, value) for name, value in seen.items()]
        finally:
            for hook in hooks:
                hook.remove()
    return records


def coord_check(
    task: TaskSpec,
    config: TrialConfig,
    *,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    steps: int = DEFAULT_STEPS,
    parametrizations: Sequence[Parametrization] = ("sp", "mup"),
    dataset: Dataset | None = None,
) -> list[CoordRecord]:
    """Train ``config`` on ``task`` at each width for ``steps`` steps, in each parametrization, and record every
    layer's mean |output| at steps 0..steps. ``task.model.base_width`` is μP's base. The caller's RNG is
    left untouched; a width gives the same records every time."""
    data = dataset if dataset is not None else load_data(task.data)
    records: list[CoordRecord] = []
    for parametrization in parametrizations:
        for width in widths:
            records += _check_one(task, config, data, parametrization, int(width), steps)
    return records


def growth(records: Sequence[CoordRecord], parametrization: Parametrization, *, step: int) -> dict[str, float]:
    """Per layer, how much its mean |output| at ``step`` changes from the narrowest to the widest width, as
    the slope of log(value) against log(width) times log(widest / narrowest): about 1 when flat, 16 when it
    grows in proportion to width over a 16x range. Least squares over all widths, so one noisy width does not
    decide it. Layers that are exactly zero at some width (a zero readout at step 0) are left out."""
    by_layer: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.parametrization == parametrization and r.step == step:
            by_layer.setdefault(r.layer, []).append((math.log(r.width), r.value))
    out = {}
    for layer, points in by_layer.items():
        if len(points) < 2 or any(v <= 0 or not math.isfinite(v) for _, v in points):
            continue
        xs = [x for x, _ in points]
        ys = [math.log(v) for _, v in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
        out[layer] = math.exp(slope * (max(xs) - min(xs)))
    return out
