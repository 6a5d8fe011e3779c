"""μLO's per-tensor accumulators and its 39 input features (28 from the state, 11 from time).

Follows the ``small_fc_lopt`` / Adafactor-MLP learned optimizer that μLO (Thérien et al. 2024) scales
(google/learned_optimization ``adafac_mlp_lopt.py`` and ``common.py``). Accumulators are updated with the
new gradient *before* the features are built; no bias correction.

State features, each normalized over the whole tensor by ``x / sqrt(1e-5 + mean(x²))``:

====== ============================================================================================
rows   feature
====== ============================================================================================
0      gradient g (non-finite entries set to 0)
1      parameter p
2-4    momenta m at decays 0.9, 0.99, 0.999
5      second moment v at decay 0.999
6-8    m · rsqrt(v + 1e-6), one per momentum
9      rsqrt(v + 1e-6)
10-12  Adafactor-normalized gradient g · row_factor · col_factor, one per Adafactor decay
13-15  row statistics (mean of g² over the largest dimension), broadcast back to the tensor
16-18  column statistics (mean of g² over the second largest dimension)
19-24  rsqrt(row + 1e-8), rsqrt(column + 1e-8)
25-27  Adafactor-normalized momenta m · row_factor · col_factor
====== ============================================================================================

Tensors with fewer than 2 dimensions are not factored: they keep a full second moment at the Adafactor
decays, which stands in for both the row and the column statistics (as in the reference).

Time features (not normalized): ``tanh(t / τ − 1)`` for τ in :data:`TIMESCALES`, where ``t`` counts the
steps taken before this one. They need no knowledge of the total number of steps.
"""

from __future__ import annotations

import functools

import torch

MOMENTUM_DECAYS = (0.9, 0.99, 0.999)  # the paper's three momentum timescales
RMS_DECAY = 0.999  # Adam's β2
ADAFACTOR_DECAYS = (0.9, 0.99, 0.999)  # row/column statistics at the same three timescales as the momenta
TIMESCALES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 1e5)
N_STATE_FEATURES = 28
N_TIME_FEATURES = len(TIMESCALES)
N_FEATURES = N_STATE_FEATURES + N_TIME_FEATURES  # 39
NORM_EPS = 1e-5  # in x / sqrt(eps + mean(x²)): keeps an all-zero feature (first step's momenta...) at zero

FEATURE_NAMES: tuple[str, ...] = (
    "g",
    "p",
    *(f"m_{b}" for b in MOMENTUM_DECAYS),
    "v",
    *(f"m_{b}_rsqrt_v" for b in MOMENTUM_DECAYS),
    "rsqrt_v",
    *(f"fac_g_{b}" for b in ADAFACTOR_DECAYS),
    *(f"row_{b}" for b in ADAFACTOR_DECAYS),
    *(f"col_{b}" for b in ADAFACTOR_DECAYS),
    *(f"rsqrt_row_{b}" for b in ADAFACTOR_DECAYS),
    *(f"rsqrt_col_{b}" for b in ADAFACTOR_DECAYS),
    *(f"fac_m_{b}" for b in ADAFACTOR_DECAYS),
)
assert len(FEATURE_NAMES) == N_STATE_FEATURES


def factored_dims(shape: torch.Size | tuple[int, ...]) -> tuple[int, int] | None:
    """``(second largest, largest)`` dimension indices for tensors with 2+ dimensions, else None.

    Ties go to the later dimension being "largest", as numpy's argsort orders the reference's shapes.
    """
    if len(shape) < 2:
        return None
    order = sorted(range(len(shape)), key=lambda i: (shape[i], i))
    return order[-2], order[-1]


def _decay_view(decays: tuple[float, ...], ndim: int, like: torch.Tensor) -> torch.Tensor:
    """``1 - decays`` shaped ``(3, 1, ..., 1)`` to broadcast over a ``(3, *shape)`` accumulator."""
    return _mixing(decays, ndim, like.device)


@functools.cache
def _mixing(decays: tuple[float, ...], ndim: int, device: torch.device) -> torch.Tensor:
    # Cached: building a tiny tensor costs as much as updating a small accumulator.
    return torch.tensor([1.0 - d for d in decays], dtype=torch.float32, device=device).view(-1, *([1] * ndim))


def work_shape(p: torch.Tensor) -> tuple[int, ...]:
    """The shape the optimizer computes with: a 0-d parameter is treated as a vector of one."""
    return tuple(p.shape) if p.ndim else (1,)


def init_state(p: torch.Tensor) -> dict[str, torch.Tensor]:
    """Zeroed accumulators for parameter ``p`` (float32, on ``p``'s device)."""
    shape = work_shape(p)
    zeros = lambda *s: torch.zeros(s, dtype=torch.float32, device=p.device)  # noqa: E731
    state = {
        "step": torch.zeros((), dtype=torch.float32),
        "m": zeros(len(MOMENTUM_DECAYS), *shape),
        "v": zeros(*shape),
    }
    dims = factored_dims(shape)
    if dims is None:
        state["v_full"] = zeros(len(ADAFACTOR_DECAYS), *shape)
    else:
        d1, d0 = dims
        state["v_row"] = zeros(len(ADAFACTOR_DECAYS), *(s for i, s in enumerate(shape) if i != d0))
        state["v_col"] = zeros(len(ADAFACTOR_DECAYS), *(s for i, s in enumerate(shape) if i != d1))
    return state


def write_features(out: torch.Tensor, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
    """Update ``state``'s accumulators with ``grad``, then write ``p``'s 28 normalized features into ``out``.

    ``out`` is a ``(28, p.numel())`` view whose rows are contiguous (a column block of the group's
    feature matrix). Everything is vectorized over the tensor's coordinates.
    """
    shape = work_shape(p)
    ndim = len(shape)
    # Non-finite entries become 0. (The reference's nan_to_num turns ±inf into ±float32 max, whose square makes the
    # second moment inf for good and the normalized features NaN.)
    g = torch.nan_to_num(grad.detach().reshape(shape).float(), nan=0.0, posinf=0.0, neginf=0.0)
    pf = p.detach().reshape(shape).float()
    m, v = state["m"], state["v"]
    m.lerp_(g.expand_as(m), _decay_view(MOMENTUM_DECAYS, ndim, g))
    v.mul_(RMS_DECAY).addcmul_(g, g, value=1.0 - RMS_DECAY)
    grad_sqr = g * g + 1e-30  # the reference's epsilon: keeps rsqrt finite for all-zero gradients

    block = out.view(N_STATE_FEATURES, *shape)
    block[0] = g
    block[1] = pf
    block[2:5] = m
    block[5] = v
    rsqrt_v = (v + 1e-6).rsqrt_()
    torch.mul(m, rsqrt_v, out=block[6:9])
    block[9] = rsqrt_v

    mix = _decay_view(ADAFACTOR_DECAYS, ndim, g)
    dims = factored_dims(shape)
    if dims is None:
        v_full = state["v_full"]
        v_full.lerp_(grad_sqr.expand_as(v_full), mix)
        torch.mul(g, (v_full + 1e-9).clamp_min_(1e-9).rsqrt_(), out=block[10:13])
        block[13:16] = v_full
        block[16:19] = v_full
        rsqrt_full = (v_full + 1e-8).rsqrt_()
        block[19:22] = rsqrt_full
        block[22:25] = rsqrt_full
        torch.mul(m, (v_full + 1e-6).rsqrt_(), out=block[25:28])
    else:
        d1, d0 = dims
        v_row, v_col = state["v_row"], state["v_col"]
        mix = _decay_view(ADAFACTOR_DECAYS, ndim - 1, g)  # the statistics have one dimension fewer
        v_row.lerp_(grad_sqr.mean(d0).expand_as(v_row), mix)
        v_col.lerp_(grad_sqr.mean(d1).expand_as(v_col), mix)
        reduced_d1 = 1 + (d1 if d1 < d0 else d1 - 1)  # d1's axis in v_row (after the leading decay axis)
        row_mean = v_row.mean(reduced_d1, keepdim=True)
        row_factor = (v_row / (row_mean + 1e-9)).clamp_min_(1e-9).rsqrt_().unsqueeze(1 + d0)
        col_factor = v_col.clamp_min(1e-9).rsqrt_().unsqueeze(1 + d1)
        factor = row_factor * col_factor
        torch.mul(g, factor, out=block[10:13])
        row, col = v_row.unsqueeze(1 + d0), v_col.unsqueeze(1 + d1)
        block[13:16] = row
        block[16:19] = col
        block[19:22] = (row + 1e-8).rsqrt_()
        block[22:25] = (col + 1e-8).rsqrt_()
        torch.mul(m, factor, out=block[25:28])
    normalize_(out)


def normalize_(features: torch.Tensor) -> torch.Tensor:
    """Divide each row of ``(28, n)`` ``features`` by its RMS over the tensor (in place)."""
    n = features.shape[1]
    mean_sq = torch.linalg.vector_norm(features, dim=1).square_().div_(n)
    return features.mul_(mean_sq.add_(NORM_EPS).rsqrt_().unsqueeze(1))


def time_features(step: float, *, device: torch.device | None = None) -> torch.Tensor:
    """``tanh(t / τ − 1)`` for every timescale τ: ``(11,)`` float32."""
    return torch.tanh(step / _timescales(device) - 1.0)


@functools.cache
def _timescales(device: torch.device | None) -> torch.Tensor:
    return torch.tensor(TIMESCALES, dtype=torch.float32, device=device)
