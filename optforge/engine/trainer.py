"""``run_trial``: train one configuration of one task and report how it went.

The contract the search relies on:

- Bad input (a SpecError or EntryPointError: unknown field values, a model that cannot read the data,
  a broken user entry point, ``device: cuda`` without a GPU) is *raised*, before any training.
- Everything else ends in a ``TrialResult``; nothing raised during training escapes:
  ``completed``, ``pruned`` (``report`` returned True), ``diverged`` (NaN/inf loss, or a loss above
  ``divergence_factor`` x the first step's loss) or ``failed`` (any exception, with its traceback).
- On CPU, the same task, config and seed give bit-identical curves. The global torch RNG is seeded
  with ``task.seed`` inside a forked RNG state, so the caller's RNG is left as it was.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from optforge.catalog import get_family
from optforge.engine.batches import MinibatchStream
from optforge.engine.data import Dataset, load_data
from optforge.engine.device import autocast, code_version, device_name, resolve_device
from optforge.engine.entrypoints import EntryPointError
from optforge.engine.evaluation import evaluate, loss_function
from optforge.engine.optimizers import build_optimizer, evaluation_mode, make_stepper
from optforge.engine.schedules import build_scheduler
from optforge.engine.workloads import build_model
from optforge.spec import MetricPoint, SpecError, TaskSpec, TrialConfig, TrialResult, TrialStatus

Report = Callable[[int, MetricPoint], bool | None]


@dataclass(frozen=True)
class TrainingState:
    """What an ``on_eval`` hook sees at an evaluation step, just before ``report``.

    The live training objects: a hook must not change them. It may copy them (``copy.deepcopy((model,
    optimizer))``) and train the copy, e.g. to judge a branched cooldown (schedule-aware ASHA).
    """

    step: int
    model: nn.Module
    optimizer: torch.optim.Optimizer
    stream: MinibatchStream
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    precision: Callable[[], contextlib.AbstractContextManager[None]]
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    kind: str


EvalHook = Callable[[TrainingState], None]

EVAL_CHUNK = 512  # examples per evaluation forward pass: large enough to be efficient, small enough for memory
CUDA_SYNC_EVERY = 16  # steps between divergence checks on CUDA; each check waits for the GPU


@dataclass
class _Progress:
    """The curve so far and what it says about the metric."""

    task: TaskSpec
    info: dict[str, Any]
    device: str
    started: float
    steps: int = 0
    curve: list[MetricPoint] = field(default_factory=list)
    best: float | None = None
    step_reached_target: int | None = None
    seconds_reached_target: float | None = None

    def add(self, point: MetricPoint) -> None:
        self.curve.append(point)
        value = point.metric(self.task.metric)
        if value is None:
            return
        better = (lambda a, b: a > b) if self.task.mode == "max" else (lambda a, b: a < b)
        if self.best is None or better(value, self.best):
            self.best = value
        target = self.task.target
        if target is not None and self.step_reached_target is None and not better(target, value):
            self.step_reached_target, self.seconds_reached_target = point.step, point.wall_time

    def result(self, status: TrialStatus, error: str | None = None) -> TrialResult:
        final = self.curve[-1].metric(self.task.metric) if self.curve else None
        return TrialResult(
            status=status,
            steps=self.steps,
            metric=self.task.metric,
            final=final,
            best=self.best,
            step_reached_target=self.step_reached_target,
            seconds_reached_target=self.seconds_reached_target,
            curve=self.curve,
            wall_time=time.perf_counter() - self.started,
            device=self.device,
            error=error,
            info=self.info,
        )


def _check_metric(task: TaskSpec, data: Dataset) -> None:
    if task.metric == "val_accuracy" and data.kind == "regression":
        raise SpecError(
            [
                (
                    "metric",
                    f"'val_accuracy' needs classification or text data; {data.name} is a regression: use 'val_loss'",
                )
            ],
            "TaskSpec",
        )


def _info(task: TaskSpec, config: TrialConfig, model: nn.Module, data: Dataset, device: torch.device) -> dict[str, Any]:
    use_bf16 = device.type == "cuda" and task.precision == "bf16"
    return {
        "n_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "model": type(model).__name__,
        "data": data.describe(),
        "device": device_name(device),
        "precision": "bf16" if use_bf16 else "fp32",
        "compile": task.compile and device.type == "cuda",
        "batch_size": min(task.batch_size, data.n_train),
        "family": config.family,
        "hparams": config.resolved_hparams(),
        "schedule": config.schedule,
        "schedule_params": config.resolved_schedule_params(),
        "mup": config.mup,
        "base_width": task.model.base_width if config.mup else None,  # μP is relative to it
        "seed": task.seed,
        "torch": torch.__version__,
        "code_version": code_version(),
    }


def run_trial(
    task: TaskSpec,
    config: TrialConfig,
    report: Report | None = None,
    *,
    dataset: Dataset | None = None,
    on_eval: EvalHook | None = None,
) -> TrialResult:
    """Train ``config`` on ``task`` for ``task.steps`` steps, evaluating every ``task.eval_every`` steps.

    ``report(step, point)`` is called after each evaluation (and at the end); returning True stops the
    trial as ``pruned``. ``dataset`` skips loading (the caller already holds ``load_data(task.data)``).
    ``on_eval(state)`` is called at each evaluation before ``report`` (see :class:`TrainingState`).
    Raises only SpecError / EntryPointError, before training; see the module docstring.
    """
    started = time.perf_counter()
    device = resolve_device(task.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(task.seed)
        progress: _Progress | None = None
        try:
            data = dataset if dataset is not None else load_data(task.data)
            _check_metric(task, data)
            model = build_model(task, data, mup=config.mup)
            progress = _Progress(task, _info(task, config, model, data, device), device_name(device), started)
            return _train(task, config, model, data, device, progress, report, on_eval)
        except (SpecError, EntryPointError):
            raise
        except Exception:
            if progress is None:
                progress = _Progress(task, {"family": config.family, "seed": task.seed}, device_name(device), started)
            return progress.result(TrialStatus.FAILED, traceback.format_exc())


def _train(
    task: TaskSpec,
    config: TrialConfig,
    model: nn.Module,
    data: Dataset,
    device: torch.device,
    progress: _Progress,
    report: Report | None,
    on_eval: EvalHook | None = None,
) -> TrialResult:
    model.to(device)
    # The budget is passed on: families with a built-in horizon (AdEMAMix, Ranger21) need it.
    optimizer = build_optimizer(model, config, total_steps=task.steps)
    scheduler = build_scheduler(optimizer, config, task.steps)
    step_fn = make_stepper(optimizer, get_family(config.family))
    forward: nn.Module = model
    if task.compile and device.type == "cuda":
        forward = torch.compile(model)  # type: ignore[assignment]
    criterion = loss_function(data.kind)

    def precision() -> contextlib.AbstractContextManager[None]:
        return autocast(device, task.precision)

    # Moved once: every batch is then a gather on the device, never a host-to-device copy.
    stream = MinibatchStream(data.x_train.to(device), data.y_train.to(device), task.batch_size, seed=task.seed)
    x_eval = data.x_val[: task.max_eval_examples].to(device)
    y_eval = data.y_val[: task.max_eval_examples].to(device)
    batch: list[torch.Tensor] = []

    def loss_fn() -> torch.Tensor:
        with precision():
            return criterion(forward(batch[0]), batch[1])

    sync_every = 1 if device.type == "cpu" else CUDA_SYNC_EVERY
    # Sums and the running peak stay on the device; torch.maximum propagates NaN, so one check of
    # the peak catches NaN, inf and a blow-up alike.
    loss_sum = torch.zeros((), device=device)
    peak = torch.zeros((), device=device)
    limit = math.inf
    initial = math.nan
    since_eval, train_seconds, lr = 0, 0.0, float(optimizer.param_groups[0]["lr"])
    train_started = time.perf_counter()
    clock = train_started
    model.train()
    for step in range(1, task.steps + 1):
        batch[:] = stream.next()
        loss = step_fn(loss_fn)
        lr = optimizer.param_groups[0]["lr"]  # the LR this step used, before the scheduler moves it
        scheduler.step()
        progress.steps, since_eval = step, since_eval + 1
        loss_sum += loss
        torch.maximum(peak, loss, out=peak)
        if step == 1:
            initial = loss.item()
            progress.info["initial_loss"] = initial  # the search's divergence penalty is scaled by it
            limit = task.divergence_factor * initial if initial > 0 else math.inf
        is_eval = step % task.eval_every == 0 or step == task.steps
        if is_eval or step % sync_every == 0:
            worst = peak.item()
            if not worst <= limit:
                what = (
                    f"became {worst}"
                    if not math.isfinite(worst)
                    else (
                        f"reached {worst:.4g}, above divergence_factor {task.divergence_factor:g} x the initial "
                        f"loss {initial:.4g}"
                    )
                )
                return progress.result(TrialStatus.DIVERGED, f"training loss {what} by step {step}")
        if not is_eval:
            continue
        train_loss = (loss_sum / since_eval).item()  # also waits for the device, so the clock is honest
        now = time.perf_counter()
        train_seconds = now - clock
        model.eval()
        with evaluation_mode(optimizer):
            val_loss, val_acc = evaluate(forward, x_eval, y_eval, data.kind, chunk_size=EVAL_CHUNK, precision=precision)
        model.train()
        if not math.isfinite(val_loss):
            return progress.result(TrialStatus.DIVERGED, f"validation loss became {val_loss} at step {step}")
        point = MetricPoint(
            step=step,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_acc,
            lr=float(lr),
            examples_per_s=since_eval * stream.batch_size / max(train_seconds, 1e-9),
            wall_time=time.perf_counter() - train_started,
        )
        progress.add(point)
        if on_eval is not None:
            on_eval(TrainingState(step, model, optimizer, stream, criterion, precision, x_eval, y_eval, data.kind))
        if report is not None and report(step, point):
            return progress.result(TrialStatus.PRUNED)
        loss_sum.zero_()
        since_eval = 0
        clock = time.perf_counter()
    return progress.result(TrialStatus.COMPLETED)
