"""A plain MLP for vectors, tabular data and flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

from optforge.engine.routing import mark_role

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLP(nn.Module):
    """``input -> (depth - 1) hidden layers -> readout``, all ``width`` wide; inputs of any shape are flattened.

    ``depth`` counts the hidden activations (layers of width ``width``): depth 1 is input + readout,
    with no hidden-to-hidden matrix. ``output_mult`` scales the readout's input (1 in standard
    parametrization; μP sets it to base_width / width).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_outputs: int,
        *,
        width: int,
        depth: int,
        activation: str = "relu",  # ReLU: the usual baseline, and what μP's MLP results were reported with
        output_mult: float = 1.0,
    ) -> None:
        super().__init__()
        self.input = mark_role(nn.Linear(math.prod(input_shape), width), "input")
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.readout = mark_role(nn.Linear(width, n_outputs), "readout")
        self.act = ACTIVATIONS[activation]()
        self.output_mult = output_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.input(x.flatten(1)))
        for layer in self.hidden:
            h = self.act(layer(h))
        # μP's multiplier scales the readout's input, not its output, so the (finite-sized) bias is not
        # scaled: this is mup.MuReadout's form.
        return self.readout(h * self.output_mult if self.output_mult != 1.0 else h)
