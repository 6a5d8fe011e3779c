"""Family-specific behaviour behind the registry's flags: cautious masks, Sophia's Hessian steps,
schedule-free evaluation, step budgets, Lookahead's slow weights and the declared state memory."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from pytorch_optimizer import SophiaH
from torch import nn

from optforge.catalog import FAMILIES, Family, get_family
from optforge.engine.optimizers import build_optimizer, evaluation_mode, make_stepper, needs_hessian_now
from optforge.spec import TrialConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.LayerNorm(32), nn.Tanh(), nn.Linear(32, 3))


def loss_of(model: nn.Module) -> Callable[[], torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    y = (x @ torch.randn(8, 3, generator=g)).argmax(1)
    return lambda: nn.functional.cross_entropy(model(x), y)


def build(model: nn.Module, name: str, total_steps: int | None = 50, **hparams: object) -> torch.optim.Optimizer:
    return build_optimizer(model, TrialConfig(family=name, hparams=hparams), total_steps=total_steps)


def train(model: nn.Module, optimizer: torch.optim.Optimizer, family: Family, steps: int) -> None:
    step = make_stepper(optimizer, family)
    for i in range(steps):
        torch.manual_seed(i)
        step(loss_of(model))


CAUTIOUS = [name for name, f in FAMILIES.items() if "cautious" in {hp.name for hp in f.hparams}]


@pytest.mark.parametrize("name", CAUTIOUS)
def test_the_cautious_flag_changes_the_update(name: str) -> None:
    """The flag travels through **kwargs into the groups; a library that ignored it would give equal runs."""
    runs = []
    for cautious in (False, True):
        model = tiny_mlp()
        train(model, build(model, name, cautious=cautious), get_family(name), steps=5)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.equal(*runs)


def test_cautious_is_offered_where_the_libraries_have_it() -> None:
    assert {"lion", "adopt", "laprop", "adamp", "ademamix", "mars"} <= set(CAUTIOUS)


def test_sophia_cannot_step_after_a_plain_backward() -> None:
    """Why ``needs_create_graph`` exists: SophiaH differentiates the gradients themselves."""
    model = tiny_mlp()
    optimizer = SophiaH(model.parameters())
    loss_of(model)().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        optimizer.step()


def test_the_stepper_builds_the_second_order_graph_exactly_on_sophias_hessian_steps() -> None:
    family = get_family("sophia")
    model = tiny_mlp()
    optimizer = build(model, "sophia", update_period=4)
    step = make_stepper(optimizer, family)
    due = []
    for i in range(10):
        due.append(needs_hessian_now(optimizer))
        torch.manual_seed(i)
        step(loss_of(model))  # SophiaH raises on a Hessian step whose gradients carry no graph
        assert all(p.grad is None for p in model.parameters()) == due[-1], "graph-carrying grads are dropped"
    assert due == [i % 4 == 0 for i in range(10)]
    hessian = optimizer.state[next(model.parameters())]["hessian_moment"]
    assert hessian.abs().sum() > 0


@pytest.mark.parametrize("name", ["schedulefree_adamw", "schedulefree_sgd"])
def test_schedule_free_families_train_at_y_and_evaluate_at_the_average(name: str) -> None:
    model = tiny_mlp()
    optimizer = build(model, name)  # comes back in train mode: schedulefree refuses to step otherwise
    train(model, optimizer, get_family(name), steps=5)
    y = [p.detach().clone() for p in model.parameters()]
    with evaluation_mode(optimizer):
        x = [p.detach().clone() for p in model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(x, y, strict=True))
    # train() lerps back from x to y: restored up to float rounding, not bit for bit.
    assert all(torch.allclose(a, p, rtol=1e-5, atol=1e-6) for a, p in zip(y, model.parameters(), strict=True))


def test_schedule_free_refuses_to_step_in_eval_mode() -> None:
    """The reason to prefer the schedulefree package: a forgotten train() is an error, not silent."""
    model = tiny_mlp()
    optimizer = build(model, "schedulefree_adamw")
    optimizer.eval()
    loss_of(model)().backward()
    with pytest.raises(Exception, match="train mode"):
        optimizer.step()


def test_ranger21_schedules_its_warm_down_over_the_trials_budget() -> None:
    model = tiny_mlp()
    with pytest.raises(ValueError, match="total_steps"):
        build(model, "ranger21", total_steps=None)
    optimizer = build(model, "ranger21", total_steps=1000)
    assert optimizer.start_warm_down == 720  # Ranger21 warms down over the last 28% of num_iterations


def test_ademamix_warms_alpha_and_beta3_up_over_the_trials_budget() -> None:
    model = tiny_mlp()
    optimizer = build(model, "ademamix", total_steps=321)
    assert {group["t_alpha_beta3"] for group in optimizer.param_groups} == {321}


@pytest.mark.parametrize(("inner", "cls"), [("adamw", torch.optim.AdamW), ("radam", torch.optim.RAdam)])
def test_lookahead_wraps_the_chosen_inner_optimizer_and_syncs_slow_weights_every_k_steps(inner: str, cls: type) -> None:
    model = tiny_mlp()
    optimizer = build(model, "lookahead", inner=inner, k=5, alpha=0.5)
    assert type(optimizer.optimizer) is cls
    assert optimizer.param_groups is optimizer.optimizer.param_groups
    start = [p.detach().clone() for p in model.parameters()]
    train(model, optimizer, get_family("lookahead"), steps=4)
    assert all(
        torch.equal(optimizer.state[p]["slow_params"], s) for p, s in zip(model.parameters(), start, strict=True)
    )
    train(model, optimizer, get_family("lookahead"), steps=1)  # the 5th step pulls back and re-anchors
    assert all(torch.equal(optimizer.state[p]["slow_params"], p) for p in model.parameters())


def _state_floats_per_parameter(optimizer: torch.optim.Optimizer, model: nn.Module) -> float:
    count = sum(
        v.numel()
        for p in model.parameters()
        for v in optimizer.state[p].values()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() > 1
    )
    return count / sum(p.numel() for p in model.parameters())


NUMERIC_STATE = [
    name for name, f in FAMILIES.items() if f.state_per_param.replace(".", "", 1).isdigit() and f.name != "lookahead"
]


@pytest.mark.parametrize("name", NUMERIC_STATE)
def test_declared_state_memory_matches_the_optimizer(name: str) -> None:
    model = tiny_mlp()
    optimizer = build(model, name)
    train(model, optimizer, get_family(name), steps=2)
    assert _state_floats_per_parameter(optimizer, model) == pytest.approx(float(get_family(name).state_per_param))
