"""A slow, obviously-correct μLO step written from the formulas, one tensor and one coordinate row at a time.

It shares no code with ``optforge.learned_opt`` except the network's weights: accumulators are recomputed
from the whole gradient history, features are built as an ``(n, 39)`` row-per-coordinate matrix with the
time features appended as columns, and the MLP is three ``F.linear`` calls on the full 39 inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MOM = (0.9, 0.99, 0.999)
FAC = (0.9, 0.99, 0.999)
RMS = 0.999
TAUS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)


def ema(history: list[torch.Tensor], decay: float) -> torch.Tensor:
    acc = torch.zeros_like(history[0])
    for x in history:
        acc = decay * acc + (1 - decay) * x
    return acc


def state_features(p: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    """``(n, 28)`` unnormalized features of ``p`` after the gradients ``grads`` (the last one is current)."""
    shape = tuple(p.shape) or (1,)
    gs = [g.reshape(shape).float() for g in grads]
    g, pf = gs[-1], p.reshape(shape).float()
    sq = [x * x + 1e-30 for x in gs]
    m = [ema(gs, b) for b in MOM]
    v = ema([x * x for x in gs], RMS)
    cols = [g, pf, *m, v]
    cols += [mk * torch.rsqrt(v + 1e-6) for mk in m]
    cols.append(torch.rsqrt(v + 1e-6))
    if len(shape) >= 2:
        order = sorted(range(len(shape)), key=lambda i: (shape[i], i))
        d1, d0 = order[-2], order[-1]
        rows = [ema([s.mean(d0) for s in sq], b) for b in FAC]
        colstats = [ema([s.mean(d1) for s in sq], b) for b in FAC]
        axis_in_row = d1 if d1 < d0 else d1 - 1
        rf = [
            torch.rsqrt(torch.clamp(r / (r.mean(axis_in_row, keepdim=True) + 1e-9), min=1e-9)).unsqueeze(d0)
            for r in rows
        ]
        cf = [torch.rsqrt(torch.clamp(c, min=1e-9)).unsqueeze(d1) for c in colstats]
        row_b = [r.unsqueeze(d0).expand(shape) for r in rows]
        col_b = [c.unsqueeze(d1).expand(shape) for c in colstats]
        cols += [g * rf[k] * cf[k] for k in range(3)]
        cols += row_b + col_b
        cols += [torch.rsqrt(r + 1e-8) for r in row_b] + [torch.rsqrt(c + 1e-8) for c in col_b]
        cols += [m[k] * rf[k] * cf[k] for k in range(3)]
    else:
        full = [ema(sq, b) for b in FAC]
        cols += [g * torch.rsqrt(torch.clamp(f + 1e-9, min=1e-9)) for f in full]
        cols += full + full
        cols += [torch.rsqrt(f + 1e-8) for f in full] * 2
        cols += [m[k] * (full[k] + 1e-6) ** -0.5 for k in range(3)]
    assert len(cols) == 28
    return torch.stack([c.expand(shape).reshape(-1) for c in cols], dim=1)


def reference_update(
    p: torch.Tensor, grads: list[torch.Tensor], network: torch.nn.Module, *, step: int, scale: float, exp_mult: float
) -> torch.Tensor:
    """``p`` after one learned-optimizer step at step index ``step`` (steps taken before this one)."""
    feats = state_features(p, grads)
    feats = feats / torch.sqrt(1e-5 + feats.square().mean(0, keepdim=True))
    time = torch.tensor([math.tanh(step / tau - 1.0) for tau in TAUS]).expand(feats.shape[0], -1)
    h = torch.cat([feats, time], dim=1)
    layers = list(network.layers)
    for i, layer in enumerate(layers):
        h = F.linear(h, layer.weight, layer.bias)
        if i < len(layers) - 1:
            h = F.relu(h)
    delta = h[:, 0] * torch.exp(exp_mult * h[:, 1])
    return p - scale * delta.reshape(p.shape)
