"""A small ResNet-style conv net for image tensors ``(C, H, W)``."""

from __future__ import annotations

import math

import torch
from torch import nn

from optforge.engine.routing import mark_role
from optforge.engine.workloads.mlp import ACTIVATIONS

NORM_GROUPS = 8  # GroupNorm, not BatchNorm: no batch-size dependence and no running statistics to refresh
# when schedule-free optimizers swap to their averaged weights for evaluation.


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, NORM_GROUPS), channels)


class ResidualBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016): ``x + conv(act(norm(conv(act(norm(x))))))``."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.norm1, self.norm2 = _norm(channels), _norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        return x + self.conv2(self.act(self.norm2(h)))


class ResNet(nn.Module):
    """Stem conv (``input``) -> ``depth`` residual blocks of ``width`` channels -> global pool -> linear ``readout``.

    The resolution is kept throughout: the built-in image data is 8x8. Inputs ``(N, H, W)`` get a
    channel dimension added.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_outputs: int,
        *,
        width: int,
        depth: int,
        activation: str = "relu",
        output_mult: float = 1.0,
    ) -> None:
        super().__init__()
        in_channels = input_shape[0] if len(input_shape) == 3 else 1
        self.stem = mark_role(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), "input")
        self.blocks = nn.Sequential(*(ResidualBlock(width, activation) for _ in range(depth)))
        self.norm = _norm(width)
        self.act = ACTIVATIONS[activation]()
        self.readout = mark_role(nn.Linear(width, n_outputs), "readout")
        self.output_mult = output_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        h = self.act(self.norm(self.blocks(self.stem(x))))
        pooled = h.mean(dim=(2, 3))
        return self.readout(pooled * self.output_mult if self.output_mult != 1.0 else pooled)  # as in MLP
