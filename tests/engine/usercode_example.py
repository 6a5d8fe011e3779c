"""User code for the entry-point tests, written the way a user would: plain functions, no optforge imports.

Referenced from specs as ``usercode_example:<function>`` (the tests put this folder on ``sys.path``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def make_model(width: int, input_shape: tuple[int, ...], n_outputs: int, layers: int = 1) -> nn.Module:
    """A tanh MLP; ``layers`` comes from ``model.kwargs``, the rest is offered by optforge."""
    modules: list[nn.Module] = [nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.Tanh()]
    for _ in range(layers - 1):
        modules += [nn.Linear(width, width), nn.Tanh()]
    modules.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*modules)


class TinyCharModel(nn.Module):
    def __init__(self, vocab: int, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.embed(tokens)))


def make_char_model(n_outputs: int, width: int) -> nn.Module:
    return TinyCharModel(n_outputs, width)


class FailsAfter(nn.Module):
    """Works for ``calls`` forward passes, then raises: a bug that shows only during training."""

    def __init__(self, n_in: int, n_out: int, calls: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.calls_left = calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls_left -= 1
        if self.calls_left < 0:
            raise RuntimeError("the user's model broke mid-training")
        return self.linear(x.flatten(1))


def make_failing_model(input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    return FailsAfter(math.prod(input_shape), n_outputs, calls=4)


def make_model_raising(width: int) -> nn.Module:
    raise RuntimeError("cannot build this model")


def make_not_a_model() -> object:
    return {"weights": [1, 2, 3]}


def make_model_wrong_outputs(input_shape: tuple[int, ...]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 7))


def make_blobs(seed: int, n: int = 240) -> dict[str, np.ndarray]:
    """Two Gaussian blobs: ``x`` and ``y`` for optforge to split with its ``seed``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.standard_normal((n, 4)).astype(np.float32) + 2.0 * y[:, None]
    return {"x": x, "y": y}


def make_presplit(n_train: int = 96, n_val: int = 32) -> tuple[torch.Tensor, ...]:
    """A regression with the user's own split, as torch tensors."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_val, 3, generator=gen)
    y = x.sum(dim=1, keepdim=True)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def make_tokens(seed: int, vocab: int = 5, seq_len: int = 12) -> dict[str, object]:
    """A repeating token pattern for a language model."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, vocab, size=64)
    ids = (starts[:, None] + np.arange(seq_len + 1)[None, :]) % vocab
    return {"x": ids[:, :-1], "y": ids[:, 1:], "kind": "lm", "n_outputs": vocab}


def make_nan_data() -> dict[str, np.ndarray]:
    x = np.ones((64, 3), dtype=np.float32)
    x[::2, 0] = np.nan
    return {"x": x, "y": np.arange(64) % 2}


def make_data_bad_keys() -> dict[str, np.ndarray]:
    return {"features": np.zeros((10, 2)), "labels": np.zeros(10)}
