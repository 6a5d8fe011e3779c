"""A user model entry point that fails on purpose, for the retry tests.

Each call appends a line to ``counter`` (a file: attempts run in different Ray worker processes), and
the model's forward raises during training when the call's number is in ``fail_calls``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class _Flaky(nn.Module):
    def __init__(self, inner: nn.Module, call: int, fail: bool) -> None:
        super().__init__()
        self.inner, self.call, self.fail = inner, call, fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail and x.shape[0] > 2:  # the builder's two-example shape check passes; training does not
            raise RuntimeError(f"flaky model: call {self.call} fails on purpose")
        return self.inner(x)


def build(input_shape: tuple[int, ...], n_outputs: int, counter: str, fail_calls: list[int]) -> nn.Module:
    path = Path(counter)
    with path.open("a") as f:
        f.write("call\n")
    call = len(path.read_text().splitlines())
    inner = nn.Sequential(
        nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), 16), nn.ReLU(), nn.Linear(16, n_outputs)
    )
    return _Flaky(inner, call, call in fail_calls)
