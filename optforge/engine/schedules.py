"""Learning-rate schedules as multiplicative factors on each parameter group's own LR.

:func:`lr_factor` is the pure formula of every schedule in :mod:`optforge.catalog.schedules`;
:func:`build_scheduler` drives an optimizer with it through ``torch.optim.lr_scheduler.LambdaLR``,
which multiplies each group's initial LR by the factor. Factors, never absolute LRs: μP gives every
parameter group its own LR, and a schedule must scale each of them alike.

Why one ``LambdaLR`` rather than ``OneCycleLR`` / ``CosineAnnealingWarmRestarts`` / ``PolynomialLR``:

- ``OneCycleLR`` divides by zero when ``pct_start x total_steps == 1`` (e.g. 10 steps at 0.1), a
  value the search can sample; here its formula is kept, the degenerate phase guarded;
- ``CosineAnnealingWarmRestarts`` takes ``eta_min`` as one *absolute* LR for all groups, and
  ``PolynomialLR`` cannot stop at a floor; both would break per-group μP LRs with ``min_lr_ratio > 0``.

The tests check that these factors equal those torch classes wherever the classes apply.

Step ``s`` counts optimizer steps already taken: the factor at ``s`` is used by step ``s + 1``.
Warmup is linear over the first ``W = round(warmup_fraction x total_steps)`` steps, at
``(s + 1) / (W + 1)`` so that no step is taken at LR 0, reaching the peak (1) at ``s = W``.
Decays run over the remaining ``total_steps - W`` steps and reach their end value at ``s = total_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from optforge.catalog import Value, get_schedule
from optforge.spec import TrialConfig


def warmup_steps(params: Mapping[str, Value], total_steps: int) -> int:
    """The number of warmup steps: ``warmup_fraction`` of the budget, rounded."""
    return round(float(params["warmup_fraction"]) * total_steps)


def _floor(params: Mapping[str, Value], decayed: float) -> float:
    """``decayed`` (from 1 down to 0) mapped onto [min_lr_ratio, 1]."""
    low = float(params.get("min_lr_ratio", 0.0))
    return low + (1.0 - low) * decayed


def _progress(step: int, warm: int, total: int) -> float:
    """How far the decay after warmup has come, from 0 (end of warmup) to 1 (end of budget)."""
    return min(1.0, (step - warm) / max(1, total - warm))


def _constant(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    return 1.0


def _cosine(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    return _floor(params, 0.5 * (1.0 + math.cos(math.pi * _progress(step, warm, total))))


def _linear(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    return _floor(params, 1.0 - _progress(step, warm, total))


def _polynomial(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    """PolynomialLR's ``(1 - progress) ** power``, after warmup and above the floor."""
    return _floor(params, (1.0 - _progress(step, warm, total)) ** float(params["power"]))


def _wsd(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    """Stable at 1, then a cooldown over the last ``decay_fraction`` of the budget (never inside warmup)."""
    start = max(warm, total - round(float(params["decay_fraction"]) * total))
    if step < start:
        return 1.0
    q = min(1.0, (step - start) / max(1, total - start))
    return _floor(params, 1.0 - q if params["cooldown"] == "linear" else 1.0 - math.sqrt(q))


def _sgdr(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    """CosineAnnealingWarmRestarts' formula: cycles of T_0, T_0 x mult, ... steps, each a cosine down."""
    cycle = max(1, round(float(params["first_cycle_fraction"]) * total))
    mult = int(params["cycle_mult"])
    t = step - warm
    while t >= cycle:
        t -= cycle
        cycle *= mult
    return _floor(params, 0.5 * (1.0 + math.cos(math.pi * t / cycle)))


def _inverse_sqrt(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    """Vaswani et al.: proportional to 1/sqrt(step), continuous with the warmup's peak at step = warmup."""
    return math.sqrt(max(warm, 1) / max(step, 1))


def _one_cycle(params: Mapping[str, Value], step: int, warm: int, total: int) -> float:
    """OneCycleLR's two-phase cosine (``three_phase=False``) as a factor of the peak; it has its own warmup."""
    div, final_div = float(params["div_factor"]), float(params["final_div_factor"])
    start, end = 1.0 / div, 1.0 / (div * final_div)
    peak_step = float(params["warmup_fraction"]) * total - 1  # OneCycleLR's phase boundary
    last = total - 1
    step = min(step, last)  # OneCycleLR's curve ends at its last step; past it the factor stays put

    def anneal(a: float, b: float, pct: float) -> float:
        return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)

    if step <= peak_step:
        return anneal(start, 1.0, step / peak_step) if peak_step > 0 else 1.0
    if last <= peak_step:  # a one-step budget: nothing left to anneal
        return 1.0
    return anneal(1.0, end, (step - peak_step) / (last - peak_step))


FactorFn = Callable[[Mapping[str, Value], int, int, int], float]
# name -> f(params, step, warmup steps, total steps): the factor once warmup is over.
_AFTER_WARMUP: dict[str, FactorFn] = {
    "constant": _constant,
    "cosine": _cosine,
    "linear": _linear,
    "wsd": _wsd,
    "one_cycle": _one_cycle,
    "sgdr": _sgdr,
    "inverse_sqrt": _inverse_sqrt,
    "polynomial": _polynomial,
}


def _factor(schedule: str, params: Mapping[str, Value], total_steps: int, step: int) -> float:
    """:func:`lr_factor` on already-resolved ``params`` (no validation: called at every step)."""
    total_steps = max(1, total_steps)
    if schedule == "one_cycle":
        return _one_cycle(params, step, 0, total_steps)
    warm = warmup_steps(params, total_steps)
    if step < warm:
        return (step + 1) / (warm + 1)
    return _AFTER_WARMUP[schedule](params, step, warm, total_steps)


def lr_factor(schedule: str, params: Mapping[str, Value], step: int, total_steps: int) -> float:
    """The LR multiplier of ``schedule`` after ``step`` of ``total_steps`` steps.

    ``params`` are the schedule's parameters; missing ones take the catalog's defaults. ValueError
    names an unknown schedule or a bad parameter.
    """
    return _factor(schedule, get_schedule(schedule).resolve(params), total_steps, step)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrialConfig, total_steps: int) -> LRScheduler:
    """A ``LambdaLR`` that applies ``config``'s schedule to every parameter group of ``optimizer``.

    Call ``scheduler.step()`` after each ``optimizer.step()``. Each group's LR is its own initial LR
    times :func:`lr_factor`, so per-group scales (μP, Muon's auxiliary AdamW) are kept.
    """
    return LambdaLR(optimizer, partial(_factor, config.schedule, config.resolved_schedule_params(), total_steps))
