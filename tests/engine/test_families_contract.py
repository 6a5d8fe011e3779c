"""The contract every registered optimizer family must meet, run over all of them on a tiny MLP.

1. 20 steps at the family's defaults lower the training loss (or the family says why it cannot, and
   that reason has its own test in ``CANNOT_DESCEND_REASONS``).
2. ``state_dict`` → checkpoint → new optimizer → ``load_state_dict`` gives identical next steps.
3. Parameter-group routing holds: every parameter in exactly one group with its role, no weight decay on
   vectors, μP's per-role LR scale on every group, and muon-like families put exactly the 2-D hidden
   weights in their spectral part.
"""

from __future__ import annotations

import copy
import io
import random
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from optforge.catalog import FAMILIES, Family
from optforge.engine.optimizers import build_optimizer, evaluation_mode, make_stepper
from optforge.engine.routing import classify_parameters
from optforge.spec import TrialConfig

STEPS = 20
# Families whose optimizer state holds Python objects, not just tensors: their checkpoints need
# torch.load(weights_only=False). Every other family must load with PyTorch's safe default.
PICKLED_STATE = {"shampoo": "PreConditioner/Graft objects", "conda": "GaLoreProjector objects"}
# family name -> a test proving the reason given in its ``cannot_descend``. Empty: every family descends.
CANNOT_DESCEND_REASONS: dict[str, Callable[[], None]] = {}


def tiny_mlp() -> nn.Module:
    """8 → 32 → 32 → 3 with a LayerNorm: input, hidden, readout and vector (bias, gain) parameters."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.LayerNorm(32), nn.Tanh(), nn.Linear(32, 3))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=g)
    y = (x @ torch.randn(8, 3, generator=g)).argmax(1)  # a linearly separable teacher
    return x, y


X, Y = _data()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def loss_of(model: nn.Module) -> Callable[[], torch.Tensor]:
    return lambda: nn.functional.cross_entropy(model(X), Y)


def config(family: Family, **hparams: object) -> TrialConfig:
    return TrialConfig(
        family=family.name, hparams=hparams, schedule="constant" if family.needs_constant_schedule else "cosine"
    )


def build(model: nn.Module, family: Family, **kwargs: object) -> torch.optim.Optimizer:
    return build_optimizer(model, config(family), total_steps=STEPS, **kwargs)  # type: ignore[arg-type]


def seed(i: int) -> None:
    """Fix every RNG a family may draw from (Sophia's Hutchinson probes, Kron's preconditioner updates)."""
    torch.manual_seed(i)
    np.random.seed(i)
    random.seed(i)


def evaluated_loss(model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
    with evaluation_mode(optimizer), torch.no_grad():
        return loss_of(model)().item()


families = pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))


@families
def test_default_hyperparameters_lower_the_training_loss_in_20_steps(family: Family) -> None:
    if family.cannot_descend:
        CANNOT_DESCEND_REASONS[family.name]()
        return
    model = tiny_mlp()
    optimizer = build(model, family)
    step = make_stepper(optimizer, family)
    before = evaluated_loss(model, optimizer)
    for i in range(STEPS):
        seed(i)
        loss = step(loss_of(model))
        assert torch.isfinite(loss), f"{family.name} produced a non-finite loss at step {i}"
    after = evaluated_loss(model, optimizer)
    assert after < 0.99 * before, f"{family.name}: loss {before:.4f} -> {after:.4f} after {STEPS} steps"


def test_every_family_marked_cannot_descend_has_its_reason_tested() -> None:
    marked = {name for name, family in FAMILIES.items() if family.cannot_descend}
    assert marked <= set(CANNOT_DESCEND_REASONS), (
        f"untested cannot_descend reasons: {marked - set(CANNOT_DESCEND_REASONS)}"
    )


def _checkpoint(optimizer: torch.optim.Optimizer, family: Family) -> dict:
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=family.name not in PICKLED_STATE)


@families
def test_state_dict_round_trip_reproduces_the_next_steps_exactly(family: Family) -> None:
    model = tiny_mlp()
    optimizer = build(model, family)
    for i in range(3):
        seed(i)
        make_stepper(optimizer, family)(loss_of(model))
    state = _checkpoint(optimizer, family)

    restored_model, fresh_model = copy.deepcopy(model), copy.deepcopy(model)
    restored = build(restored_model, family)
    restored.load_state_dict(state)
    fresh = build(fresh_model, family)
    runs = [(model, optimizer), (restored_model, restored), (fresh_model, fresh)]
    for i in range(3, 6):
        for m, opt in runs:
            seed(i)
            make_stepper(opt, family)(loss_of(m))

    for (name, original), resumed in zip(model.named_parameters(), restored_model.parameters(), strict=True):
        assert torch.equal(original, resumed), f"{family.name}: {name} differs after resuming from a checkpoint"
    # The loaded state must matter: an optimizer starting from scratch takes different steps.
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), fresh_model.parameters(), strict=True))


def _hparam_names(family: Family) -> set[str]:
    return {hp.name for hp in family.hparams}


def _valid_decay(family: Family) -> float | None:
    """A non-zero weight decay the family accepts, so routing's zero on vectors is observable."""
    if "weight_decay" not in _hparam_names(family):
        return None
    hp = family.hparam("weight_decay")
    return float(hp.default) if hp.default else float(hp.low or 0.01)


@families
def test_parameter_groups_follow_roles_decay_and_mup_scales(family: Family) -> None:
    model = tiny_mlp()
    roles = classify_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = _valid_decay(family)
    hparams = family.resolve({} if decay is None else {"weight_decay": decay})
    scales = {"input": 0.5, "hidden": 0.25, "readout": 2.0, "vector": 4.0}
    cfg = config(family, **({} if decay is None else {"weight_decay": decay}))
    optimizer = build_optimizer(model, cfg, lr_scale=scales, total_steps=STEPS)  # type: ignore[arg-type]

    seen: list[str] = []
    for group in optimizer.param_groups:
        role = group["role"]
        for p in group["params"]:
            seen.append(names[id(p)])
            assert roles[names[id(p)]] == role, f"{names[id(p)]} is in a {role!r} group"
        base = hparams["adamw_lr"] if group.get("spectral") is False else hparams["lr"]
        assert group["lr"] == pytest.approx(float(base) * scales[role]), f"μP scale missing on {role} group"
        if role == "vector":
            assert group["weight_decay"] == 0.0, "vector parameters (biases, norm gains) must not be decayed"
        elif decay is not None:
            assert group["weight_decay"] == pytest.approx(decay)
    assert sorted(seen) == sorted(roles), "every trainable parameter belongs to exactly one group"

    if family.routing == "hidden_matrices":
        spectral = {names[id(p)] for g in optimizer.param_groups if g["spectral"] for p in g["params"]}
        hidden_2d = {n for n, p in model.named_parameters() if roles[n] == "hidden" and p.ndim == 2}
        assert spectral == hidden_2d, "only 2-D hidden weights may get the spectral update"


@families
def test_an_lr_scheduler_reaches_every_parameter_group(family: Family) -> None:
    model = tiny_mlp()
    optimizer = build(model, family)
    before = [group["lr"] for group in optimizer.param_groups]
    torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([lr / 2 for lr in before])
