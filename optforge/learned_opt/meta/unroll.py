"""Truncated unrolls of an inner task under a learned optimizer with weights θ.

The inner state between truncations (:class:`InnerState`) is plain tensors and numbers: the model's
``state_dict``, the optimizer's state (without the network, which θ replaces) and the step counter. It
travels to Ray workers and into meta-training checkpoints as is.

The meta-loss of a truncation is the mean over its steps of the training loss divided by the episode's
initial loss (so classification and regression tasks weigh alike), each step capped at ``cap`` (a
diverged or NaN step counts as ``cap``, and ends the episode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from optforge.learned_opt.meta.tasks import InnerTask, batch, build_inner, inner_groups
from optforge.learned_opt.network import UpdateNetwork
from optforge.learned_opt.optimizer import MuLO, StandardLO


@dataclass
class InnerState:
    """Where an inner training run stands: model weights, optimizer state, steps taken, initial loss."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    step: int
    initial_loss: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "step": self.step, "initial_loss": self.initial_loss}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InnerState:
        return cls(**data)


@dataclass
class Truncation:
    """What one truncated unroll gave: its meta-loss and raw losses."""

    meta_loss: float
    mean_loss: float
    last_loss: float
    steps: int
    diverged: bool
    losses: list[float] = field(default_factory=list)


def init_inner(task: InnerTask) -> InnerState:
    """A fresh inner run of ``task``: the initialized model and the loss it starts from."""
    model, data, criterion = build_inner(task)
    with torch.no_grad():
        x, y = batch(data, task, 0)
        initial = float(criterion(model(x), y))
    return InnerState(model=model.state_dict(), optimizer=None, step=0, initial_loss=initial)


def learned_optimizer(task: InnerTask, model: torch.nn.Module, theta: torch.Tensor) -> MuLO:
    """μLO (μP task) or the SP learned optimizer over ``model`` with network weights ``theta``."""
    cls = MuLO if task.mup else StandardLO
    return cls(inner_groups(model, task), weights=UpdateNetwork.from_vector(theta), base_width=task.base_width)


def run_truncation(
    theta: torch.Tensor, task: InnerTask, state: InnerState, steps: int, *, cap: float, keep_losses: bool = False
) -> tuple[InnerState, Truncation]:
    """Train ``task`` from ``state`` for ``steps`` steps with θ; the new state and the truncation's meta-loss."""
    model, data, criterion = build_inner(task)
    model.load_state_dict(state.model)
    optimizer = learned_optimizer(task, model, theta)
    if state.optimizer is not None:
        optimizer.load_state_dict(state.optimizer)
    limit = cap * state.initial_loss
    meta_total, raw_total, last, good, diverged = 0.0, 0.0, math.nan, 0, False
    losses: list[float] = []
    model.train()
    for i in range(steps):
        x, y = batch(data, task, state.step + i)
        loss = criterion(model(x), y)
        value = float(loss.detach())
        if not math.isfinite(value) or value > limit:
            diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        meta_total += value / state.initial_loss
        raw_total += value
        last, good = value, good + 1
        if keep_losses:
            losses.append(value)
    # A diverged run counts as `cap` for every step it had left: stopping early must not look cheaper.
    meta_total += cap * (steps - good)
    opt_state = optimizer.state_dict()
    opt_state.pop("learned", None)  # θ travels separately
    new_state = InnerState(
        model=model.state_dict(), optimizer=opt_state, step=state.step + steps, initial_loss=state.initial_loss
    )
    return new_state, Truncation(
        meta_loss=meta_total / steps,
        mean_loss=raw_total / good if good and not diverged else math.inf,
        last_loss=last if not diverged else math.inf,
        steps=steps,
        diverged=diverged,
        losses=losses,
    )
