"""μLO's inputs: 28 state features normalized per tensor, 11 time features, the accumulators behind them."""

from __future__ import annotations

import math

import pytest
import torch

from optforge.learned_opt.features import (
    FEATURE_NAMES,
    N_FEATURES,
    N_STATE_FEATURES,
    N_TIME_FEATURES,
    TIMESCALES,
    factored_dims,
    init_state,
    time_features,
    write_features,
)
from optforge.learned_opt.network import UpdateNetwork

from .reference import state_features


def features_after(p: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    state = init_state(p)
    out = torch.empty(N_STATE_FEATURES, max(p.numel(), 1))
    for g in grads:
        write_features(out, p, g, state)
    return out


def test_there_are_28_state_and_11_time_features_39_in_all() -> None:
    assert (N_STATE_FEATURES, N_TIME_FEATURES, N_FEATURES) == (28, 11, 39)
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 28
    assert UpdateNetwork().layers[0].in_features == 39
    assert UpdateNetwork().layers[-1].out_features == 2


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 2, 2), (9,), ()], ids=["matrix", "conv", "vector", "scalar"])
def test_each_state_feature_has_unit_rms_over_its_tensor(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    p = torch.randn(shape)
    feats = features_after(p, [torch.randn(shape) for _ in range(3)])
    assert feats.shape == (28, max(p.numel(), 1))
    rms = feats.square().mean(1).sqrt()
    # x / sqrt(1e-5 + mean(x²)) has RMS just under 1 unless the raw feature is tiny next to the 1e-5.
    raw = state_features(p, [torch.randn(shape)])  # magnitudes only matter here
    assert torch.all(rms <= 1.0 + 1e-6)
    assert torch.all(rms[raw.square().mean(0) > 1e-2] > 0.99)


def test_features_match_the_formulas_written_out_per_coordinate() -> None:
    torch.manual_seed(1)
    for shape in [(6, 4), (4, 6), (2, 3, 5), (5,)]:
        p = torch.randn(shape)
        grads = [torch.randn(shape) for _ in range(4)]
        ours = features_after(p, grads)
        ref = state_features(p, grads)
        ref = ref / torch.sqrt(1e-5 + ref.square().mean(0, keepdim=True))
        torch.testing.assert_close(ours, ref.T, rtol=1e-4, atol=1e-5, msg=f"shape {shape}")


def test_all_zero_gradients_give_finite_features() -> None:
    p = torch.randn(5, 3)
    feats = features_after(p, [torch.zeros(5, 3)] * 2)
    assert torch.isfinite(feats).all()


def test_non_finite_gradients_are_zeroed_before_they_reach_the_accumulators() -> None:
    p = torch.randn(4, 4)
    g = torch.randn(4, 4)
    g[0, 0], g[1, 1] = math.nan, math.inf
    state = init_state(p)
    write_features(torch.empty(28, 16), p, g, state)
    assert all(torch.isfinite(v).all() for v in state.values())


def test_the_two_largest_dimensions_are_factored_and_vectors_are_not() -> None:
    assert factored_dims((3, 8)) == (0, 1)
    assert factored_dims((8, 3)) == (1, 0)
    assert factored_dims((16, 3, 5, 5)) == (3, 0)  # a conv weight: out channels and the last kernel dim
    assert factored_dims((4, 4)) == (0, 1)
    assert factored_dims((10,)) is None and factored_dims(()) is None
    matrix, vector = init_state(torch.zeros(8, 3)), init_state(torch.zeros(10))
    assert matrix["v_row"].shape == (3, 3) and matrix["v_col"].shape == (3, 8) and "v_full" not in matrix
    assert vector["v_full"].shape == (3, 10) and "v_row" not in vector


def test_time_features_are_tanh_of_t_over_each_timescale_minus_one() -> None:
    for t in (0, 1, 37, 12345):
        expected = torch.tensor([math.tanh(t / tau - 1.0) for tau in TIMESCALES])
        torch.testing.assert_close(time_features(float(t)), expected)
    # They need no step budget: a long run keeps moving its slow features.
    assert time_features(1e4)[-1] < time_features(3e4)[-1]
