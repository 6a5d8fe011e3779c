"""The per-coordinate update network: 39 features → 32 → ReLU → 32 → ReLU → 2 (direction, log-magnitude).

It is applied to every coordinate of every parameter at once, in a *feature-major* layout: the input is
a ``(28, N)`` matrix of state features (one column per coordinate) plus the 11 time features, which are
the same for every coordinate of a step. The time features are therefore folded into the first layer's
bias (``W1[:, 28:] @ time + b1``): the result is exactly the 39-input MLP, at 28/39 of its first-layer cost.

Meta-training treats the network's weights as one flat vector θ (``to_vector`` / ``from_vector``),
which evolution strategies perturb.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from optforge.learned_opt.features import FEATURE_NAMES, N_FEATURES, N_STATE_FEATURES, N_TIME_FEATURES

HIDDEN = 32  # the paper's (μLO / small_fc_lopt) hidden size: ~4.7k FLOPs per coordinate per step
# Outputs: 0 is the direction d, 1 the log-magnitude s of Δ = d · exp(EXP_MULT · s).
OUTPUTS = 2


class UpdateNetwork(nn.Module):
    """The MLP with weights initialized as in the paper: truncated normal, std 1/sqrt(fan_in), biases 0."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(N_FEATURES, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, OUTPUTS)]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights from torch's global RNG (seed it for a reproducible network)."""
        for layer in self.layers:
            std = 1.0 / math.sqrt(layer.in_features)
            # Haiku's TruncatedNormal (the reference implementation's init) cuts at 2 std.
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(layer.bias)

    def init_adam_like(self, feature: str = "m_0.9_rsqrt_v", gain: float = 1.0, residual: float = 0.1) -> UpdateNetwork:
        """Start from a known-good rule instead of a random one: d ≈ the ``feature`` column (by default
        Adam's m/√v at β1 = 0.9, normalized per tensor), s ≈ 0.

        Two hidden units per layer carry +feature and −feature through the ReLUs (relu(x) − relu(−x) = x);
        every other weight keeps its random draw. The direction is ``gain`` times the feature plus the
        random part scaled by ``gain · residual``, so meta-training can grow it where it helps. Used when meta-training cannot
        afford the paper's thousands of outer steps from a random start (see docs/learned_opt.md).
        """
        index = FEATURE_NAMES.index(feature)
        first, second, third = self.layers
        with torch.no_grad():
            first.weight[:2].zero_()
            first.bias[:2].zero_()
            first.weight[0, index], first.weight[1, index] = 1.0, -1.0
            second.weight[:2].zero_()
            second.bias[:2].zero_()
            second.weight[0, 0] = second.weight[1, 1] = 1.0
            third.weight[0].mul_(gain * residual)
            third.weight[0, 0], third.weight[0, 1] = gain, -gain
            third.weight[1, :2].zero_()
        return self

    @property
    def n_weights(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def to_vector(self) -> torch.Tensor:
        """All weights as one flat float32 vector θ (a copy)."""
        return nn.utils.parameters_to_vector(self.parameters()).detach().clone()

    def load_vector(self, theta: torch.Tensor) -> UpdateNetwork:
        """Overwrite the weights with the flat vector ``theta`` (as made by :meth:`to_vector`)."""
        if theta.numel() != self.n_weights:
            raise ValueError(f"theta has {theta.numel()} entries; this network has {self.n_weights} weights")
        with torch.no_grad():
            nn.utils.vector_to_parameters(theta.to(self.layers[0].weight), self.parameters())
        return self

    @classmethod
    def from_vector(cls, theta: torch.Tensor, hidden: int = HIDDEN) -> UpdateNetwork:
        return cls(hidden).requires_grad_(False).load_vector(theta)

    def time_bias(self, time_features: torch.Tensor) -> torch.Tensor:
        """The first layer's bias with the time features folded in: ``(hidden,)``."""
        first = self.layers[0]
        return torch.addmv(first.bias, first.weight[:, N_STATE_FEATURES:], time_features)

    def forward(self, features: torch.Tensor, time_features: torch.Tensor) -> torch.Tensor:
        """``(2, N)`` outputs for ``(28, N)`` normalized state features and ``(11,)`` time features."""
        if features.shape[0] != N_STATE_FEATURES or time_features.shape != (N_TIME_FEATURES,):
            raise ValueError(
                f"expected ({N_STATE_FEATURES}, N) features and ({N_TIME_FEATURES},) time features, got "
                f"{tuple(features.shape)} and {tuple(time_features.shape)}"
            )
        return apply_network(features, self.time_bias(time_features), *self.matrices())

    def matrices(self) -> tuple[torch.Tensor, ...]:
        """``(W1_state, W2, b2, W3, b3)``: what :func:`apply_network` needs besides the time bias."""
        first, second, third = self.layers
        return first.weight[:, :N_STATE_FEATURES], second.weight, second.bias, third.weight, third.bias


# Columns per matmul block: the (32, CHUNK) activations (512 KiB) stay in a core's L2 cache. Measured 2-3x faster
# than one call over all 0.56M columns of a 512-wide MLP on the 2-core development box (one thread).
CHUNK = 4096


def mlp_block(
    x: torch.Tensor,
    bias1: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    w3: torch.Tensor,
    b3: torch.Tensor,
) -> torch.Tensor:
    """The MLP on one feature-major block: ``(28, n)`` → ``(2, n)``."""
    h = torch.addmm(bias1.unsqueeze(1), w1, x).relu_()
    h = torch.addmm(b2.unsqueeze(1), w2, h).relu_()
    return torch.addmm(b3.unsqueeze(1), w3, h)


def apply_network(
    features: torch.Tensor,
    bias1: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    w3: torch.Tensor,
    b3: torch.Tensor,
    *,
    block: Callable[..., torch.Tensor] = mlp_block,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """The MLP on feature-major input: ``(28, N)`` → ``(2, N)``, in blocks of ``chunk`` columns.

    Each block is three matrix products over all its columns (no per-element Python); ``block`` may be a
    compiled :func:`mlp_block`.
    """
    total = features.shape[1]
    if total <= chunk:
        return block(features, bias1, w1, w2, b2, w3, b3)
    out = torch.empty(OUTPUTS, total, dtype=features.dtype, device=features.device)
    for start in range(0, total, chunk):
        cols = slice(start, start + chunk)
        out[:, cols] = block(features[:, cols], bias1, w1, w2, b2, w3, b3)
    return out
