"""The ``Dataset`` every workload trains on: train/validation tensors plus what a model needs to know."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import torch

Kind = Literal["classification", "regression", "lm"]
KINDS: tuple[Kind, ...] = ("classification", "regression", "lm")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and validation tensors on the CPU, with the facts a model and a loss need.

    Shapes and dtypes, by ``kind``:

    - ``classification``: ``x`` float32 ``(N, *input_shape)``, ``y`` int64 ``(N,)`` in ``[0, n_outputs)``.
    - ``regression``: ``x`` float32 ``(N, *input_shape)``, ``y`` float32 ``(N, n_outputs)``.
    - ``lm``: ``x`` and ``y`` int64 ``(N, seq_len)`` token ids in ``[0, n_outputs)``; ``y`` is ``x``
      shifted by one position.

    Datasets are cached and shared within a process: treat the tensors as read-only.
    """

    name: str
    kind: Kind
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_outputs: int
    vocab: str | None = None  # lm only: vocab[i] is the character of token id i

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``(features,)``, ``(C, H, W)`` or ``(seq_len,)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x_val.shape[0])

    @cached_property
    def fingerprint(self) -> str:
        """A content hash (hex) of the tensors and kind: equal data gives equal fingerprints, however loaded."""
        digest = hashlib.sha256(f"{self.kind}:{self.n_outputs}".encode())
        for tensor in (self.x_train, self.y_train, self.x_val, self.y_val):
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for trial records and the warm-start similarity of tasks."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "fingerprint": self.fingerprint[:16],
        }


def _check(data: Dataset) -> list[str]:
    """Everything wrong with ``data``'s shapes and dtypes, phrased for the author of the arrays."""
    if data.kind not in KINDS:
        return [f"kind must be one of {list(KINDS)}, got {data.kind!r}"]
    problems = []
    for split in ("train", "val"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.shape[0] != y.shape[0]:
            problems.append(f"x_{split} has {x.shape[0]} rows but y_{split} has {y.shape[0]}")
        if x.shape[0] == 0:
            problems.append(f"the {split} split is empty")
    if data.x_train.shape[1:] != data.x_val.shape[1:]:
        problems.append(
            f"x_train examples have shape {tuple(data.x_train.shape[1:])}, x_val {tuple(data.x_val.shape[1:])}"
        )
    if data.n_outputs < 1:
        problems.append(f"n_outputs must be at least 1, got {data.n_outputs}")
    if problems:
        return problems
    if data.kind == "lm":
        for name in ("x_train", "y_train", "x_val", "y_val"):
            t = getattr(data, name)
            if t.dtype != torch.int64 or t.ndim != 2:
                problems.append(
                    f"lm data needs {name} as int64 token ids of shape (N, seq_len), got {t.dtype} {tuple(t.shape)}"
                )
    else:
        for name in ("x_train", "x_val"):
            if getattr(data, name).dtype != torch.float32:
                problems.append(f"{name} must be float32, got {getattr(data, name).dtype}")
    if data.kind == "classification":
        for name in ("y_train", "y_val"):
            t = getattr(data, name)
            if t.dtype != torch.int64 or t.ndim != 1:
                problems.append(
                    f"classification needs {name} as int64 labels of shape (N,), got {t.dtype} {tuple(t.shape)}"
                )
    if data.kind == "regression":
        for name in ("y_train", "y_val"):
            t = getattr(data, name)
            if t.dtype != torch.float32 or t.ndim != 2 or t.shape[1] != data.n_outputs:
                problems.append(
                    f"regression needs {name} as float32 of shape (N, n_outputs={data.n_outputs}), got {t.dtype} {tuple(t.shape)}"
                )
    if data.kind in ("classification", "lm") and not problems:
        for name in ("y_train", "y_val", *(("x_train", "x_val") if data.kind == "lm" else ())):
            t = getattr(data, name)
            low, high = int(t.min()), int(t.max())
            if low < 0 or high >= data.n_outputs:
                problems.append(f"{name} holds ids in [{low}, {high}], outside [0, n_outputs={data.n_outputs})")
    return problems
