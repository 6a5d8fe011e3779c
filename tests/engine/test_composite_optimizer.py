"""A composite optimizer (Muon + AdamW) behaves as one optimizer, also after a checkpoint restore."""

from __future__ import annotations

import torch
from torch import nn

from optforge.engine.optimizers import build_optimizer
from optforge.engine.schedules import build_scheduler
from optforge.spec import TrialConfig


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def part_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    return [group["lr"] for part in optimizer.parts for group in part.param_groups]  # type: ignore[attr-defined]


def test_a_scheduler_drives_every_part_after_load_state_dict() -> None:
    config = TrialConfig(family="muon", schedule="linear", schedule_params={"warmup_fraction": 0.0})
    model = mlp()
    optimizer = build_optimizer(model, config, total_steps=10)
    optimizer.load_state_dict(optimizer.state_dict())
    scheduler = build_scheduler(optimizer, config, 10)
    before = part_lrs(optimizer)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    after = part_lrs(optimizer)
    assert len(after) >= 2
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)


def test_composite_groups_are_the_parts_groups() -> None:
    optimizer = build_optimizer(mlp(), TrialConfig(family="muon"), total_steps=10)
    optimizer.load_state_dict(optimizer.state_dict())
    shared = [g for part in optimizer.parts for g in part.param_groups]  # type: ignore[attr-defined]
    assert all(a is b for a, b in zip(optimizer.param_groups, shared, strict=True))
