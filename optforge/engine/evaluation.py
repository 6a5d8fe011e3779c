"""Losses and validation metrics for each kind of data."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from optforge.engine.data import Kind

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(kind: Kind) -> LossFn:
    """Mean cross-entropy (per example, or per token for ``lm``) or mean squared error (per target)."""
    if kind == "regression":
        return lambda out, y: F.mse_loss(out.float(), y)
    if kind == "lm":
        return lambda out, y: F.cross_entropy(out.flatten(0, 1).float(), y.flatten())
    return lambda out, y: F.cross_entropy(out.float(), y)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    kind: Kind,
    *,
    chunk_size: int,
    precision: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
) -> tuple[float, float | None]:
    """``(mean loss, accuracy)`` of ``model`` on ``(x, y)``, in chunks; accuracy is None for regression.

    Loss and accuracy are averaged like the training loss: per example, per token (lm) or per target.
    Sums stay on the device; one synchronization at the end.
    """
    total = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    count = 0
    for start in range(0, x.shape[0], chunk_size):
        xb, yb = x[start : start + chunk_size], y[start : start + chunk_size]
        with precision():
            out = model(xb)
        out = out.float()
        if kind == "regression":
            total += F.mse_loss(out, yb, reduction="sum")
        else:
            logits, targets = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
            total += F.cross_entropy(logits, targets, reduction="sum")
            correct += (logits.argmax(dim=-1) == targets).sum()
        count += yb.numel()
    loss, acc = torch.stack([total, correct]).div(count).tolist()
    return loss, (None if kind == "regression" else acc)
