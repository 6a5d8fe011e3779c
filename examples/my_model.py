"""A user's own model, the way a user writes it: plain PyTorch, no optforge import.

optforge calls ``make_model`` with the ``model.kwargs`` of the spec plus what it knows about the data,
when the signature asks for it: ``width``, ``depth``, ``input_shape`` (one example) and ``n_outputs``.
The service imports it as ``my_model:make_model``, so this folder must be on the service's PYTHONPATH:

    PYTHONPATH=examples optforge serve --allow-user-code
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualMLP(nn.Module):
    """An MLP with pre-norm residual blocks: input projection, ``depth`` blocks, readout."""

    def __init__(self, n_in: int, width: int, depth: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout))
            for _ in range(depth)
        )
        self.readout = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.flatten(1))
        for block in self.blocks:
            h = h + block(h)
        return self.readout(h)


def make_model(width: int, depth: int, input_shape: tuple[int, ...], n_outputs: int, dropout: float = 0.0) -> nn.Module:
    """The factory the spec names; ``dropout`` comes from ``model.kwargs``, the rest from optforge."""
    return ResidualMLP(math.prod(input_shape), width, depth, n_outputs, dropout)
