"""Several optimizers over disjoint parameters, presented as one ``torch.optim.Optimizer``.

Users get one object: LR schedulers, ``zero_grad``, ``state_dict`` and checkpointing work on it as on
any optimizer. The composite's ``param_groups`` are the *same dict objects* as its parts' groups, so a
scheduler that sets ``group["lr"]`` drives every part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class CompositeOptimizer(torch.optim.Optimizer):
    """Steps each part in turn. Parts must own disjoint parameters."""

    def __init__(self, parts: Sequence[torch.optim.Optimizer]) -> None:
        if not parts:
            raise ValueError("CompositeOptimizer needs at least one optimizer")
        self.parts = list(parts)
        # Optimizer.add_param_group appends the dicts it is given, so the groups stay shared with the parts.
        super().__init__([g for part in self.parts for g in part.param_groups], defaults={})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        parts = state_dict["parts"]
        if len(parts) != len(self.parts):
            raise ValueError(f"state has {len(parts)} parts, this optimizer {len(self.parts)}")
        for part, state in zip(self.parts, parts, strict=True):
            part.load_state_dict(state)
        # A part's load_state_dict replaces its group dicts: re-share them, or LR schedulers on the
        # composite would drive stale copies and the parts would train at a frozen LR.
        self.param_groups = [g for part in self.parts for g in part.param_groups]

    def train(self) -> None:
        for part in self.parts:
            if callable(getattr(part, "train", None)):
                part.train()

    def eval(self) -> None:
        for part in self.parts:
            if callable(getattr(part, "eval", None)):
                part.eval()

    def __repr__(self) -> str:
        return "CompositeOptimizer(" + ", ".join(type(p).__name__ for p in self.parts) + ")"
