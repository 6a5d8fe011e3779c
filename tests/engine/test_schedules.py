"""Schedules: factor values at key steps, agreement with torch's own schedulers, per-group scaling."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from optforge.catalog import SCHEDULES
from optforge.engine.schedules import build_scheduler, lr_factor, warmup_steps
from optforge.spec import TrialConfig

T = 200  # total steps in these tests
DECAYING_TO_FLOOR = ("cosine", "linear", "wsd", "polynomial")


@pytest.mark.parametrize("name", [s for s in SCHEDULES if s != "one_cycle"])
def test_every_schedule_warms_up_linearly_to_the_peak(name: str) -> None:
    params = {"warmup_fraction": 0.1}
    warm = warmup_steps(SCHEDULES[name].resolve(params), T)
    assert warm == 20
    assert lr_factor(name, params, 0, T) == pytest.approx(1 / (warm + 1))  # the first step is not wasted at 0
    assert lr_factor(name, params, warm // 2, T) == pytest.approx((warm // 2 + 1) / (warm + 1))
    assert lr_factor(name, params, warm, T) == pytest.approx(1.0)  # end of warmup: the peak


@pytest.mark.parametrize("name", DECAYING_TO_FLOOR)
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_decaying_schedules_end_at_the_floor_and_never_go_below_it(name: str, floor: float) -> None:
    params = {"warmup_fraction": 0.05, "min_lr_ratio": floor}
    factors = [lr_factor(name, params, s, T) for s in range(T + 1)]
    assert factors[T] == pytest.approx(floor)
    after_warmup = factors[10:]  # warmup itself starts near 0, below any floor
    assert min(after_warmup) >= floor - 1e-12
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(after_warmup)), "must not rise again"


def test_cosine_is_halfway_at_the_middle_of_its_decay() -> None:
    params = {"warmup_fraction": 0.1, "min_lr_ratio": 0.2}
    assert lr_factor("cosine", params, 20 + 90, T) == pytest.approx(0.2 + 0.8 * 0.5)


def test_linear_decay_is_linear() -> None:
    params = {"warmup_fraction": 0.0}
    assert [lr_factor("linear", params, s, T) for s in (0, 50, 100, 150)] == pytest.approx([1, 0.75, 0.5, 0.25])


@pytest.mark.parametrize(("cooldown", "at_quarter"), [("linear", 0.75), ("1-sqrt", 0.5)])
def test_wsd_is_stable_until_the_cooldown_then_follows_its_shape(cooldown: str, at_quarter: float) -> None:
    params = {"warmup_fraction": 0.05, "decay_fraction": 0.2, "cooldown": cooldown}
    start = T - 40
    assert all(lr_factor("wsd", params, s, T) == 1.0 for s in range(10, start + 1))
    assert lr_factor("wsd", params, start + 10, T) == pytest.approx(at_quarter)
    assert lr_factor("wsd", params, T, T) == pytest.approx(0.0)


def test_inverse_sqrt_halves_at_four_times_the_warmup() -> None:
    params = {"warmup_fraction": 0.05}
    assert lr_factor("inverse_sqrt", params, 10, T) == pytest.approx(1.0)
    assert lr_factor("inverse_sqrt", params, 40, T) == pytest.approx(0.5)


def test_polynomial_follows_its_power() -> None:
    params = {"warmup_fraction": 0.0, "power": 2.0}
    assert lr_factor("polynomial", params, 100, T) == pytest.approx(0.25)


def _torch_factors(make: object, n: int) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = make(opt)  # type: ignore[operator]
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(("total", "pct"), [(200, 0.3), (37, 0.25), (50, 0.5)])
def test_one_cycle_equals_torch_one_cycle_lr(total: int, pct: float) -> None:
    expected = _torch_factors(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=1.0, total_steps=total, pct_start=pct, cycle_momentum=False
        ),
        total,
    )
    ours = [lr_factor("one_cycle", {"warmup_fraction": pct}, s, total) for s in range(total)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_one_cycle_survives_the_budget_where_torch_divides_by_zero() -> None:
    # OneCycleLR raises ZeroDivisionError when pct_start * total_steps == 1 (10 steps at 0.1).
    factors = [lr_factor("one_cycle", {"warmup_fraction": 0.1}, s, 10) for s in range(11)]
    assert factors[0] == pytest.approx(1.0) and all(math.isfinite(f) for f in factors)
    assert factors[9] == pytest.approx(1 / (25 * 1e4))


@pytest.mark.parametrize("mult", [1, 2])
def test_sgdr_after_warmup_equals_cosine_annealing_warm_restarts(mult: int) -> None:
    params = {"warmup_fraction": 0.1, "first_cycle_fraction": 0.15, "cycle_mult": mult}
    expected = _torch_factors(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=30, T_mult=mult), T - 20
    )
    ours = [lr_factor("sgdr", params, s, T) for s in range(20, T)]
    assert ours == pytest.approx(expected, abs=1e-12)
    assert lr_factor("sgdr", params, 20 + 30, T) == 1.0  # a warm restart


def test_polynomial_without_warmup_equals_polynomial_lr() -> None:
    expected = _torch_factors(lambda opt: torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=T, power=1.5), T)
    ours = [lr_factor("polynomial", {"warmup_fraction": 0.0, "power": 1.5}, s, T) for s in range(T)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_scheduler_scales_every_group_by_the_same_factor(name: str) -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b], "lr": 0.02}], lr=1.0)
    params = {"min_lr_ratio": 0.1} if any(p.name == "min_lr_ratio" for p in SCHEDULES[name].params) else {}
    config = TrialConfig(family="sgd", schedule=name, schedule_params=params)
    sched = build_scheduler(opt, config, 60)
    for step in range(61):
        factor = lr_factor(name, params, step, 60)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * factor)
        assert opt.param_groups[1]["lr"] == pytest.approx(0.02 * factor)  # relative: μP group scales survive
        opt.step()
        sched.step()


def test_unknown_schedule_parameters_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="decay_fraction"):
        lr_factor("cosine", {"decay_fraction": 0.2}, 0, 10)
