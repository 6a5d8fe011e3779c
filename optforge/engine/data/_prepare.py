"""Turning raw arrays into a ``Dataset``: the deterministic split, label encoding and standardization."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from optforge.engine.data._dataset import Dataset, Kind


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices: a seeded permutation, the last ``val_fraction`` of it for validation.

    Both splits get at least one row; the same ``(n, val_fraction, seed)`` always gives the same split.
    """
    if n < 2:
        raise ValueError(f"need at least 2 examples to split into train and validation, got {n}")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n - n_val]), np.sort(order[n - n_val :])


def standardize(train: np.ndarray, val: np.ndarray, *, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both splits shifted and scaled by the *train* split's mean and std (no validation leakage).

    ``per_feature`` scales each column of 2-D data on its own; images share one mean and std so that
    pixels keep their relative contrast. Constant features are centred and left unscaled.
    """
    axis = 0 if per_feature else None
    mean = train.mean(axis=axis, keepdims=per_feature)
    std = train.std(axis=axis, keepdims=per_feature)
    std = np.where(std < 1e-8, 1.0, std)
    return ((train - mean) / std).astype(np.float32), ((val - mean) / std).astype(np.float32)


def infer_kind(y: np.ndarray) -> Kind:
    """``regression`` for floating-point targets, ``classification`` for integer, boolean or string labels."""
    return "regression" if np.issubdtype(y.dtype, np.floating) else "classification"


def from_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    kind: Literal["classification", "regression"] | None = None,
    prepare: bool = True,
    val: tuple[np.ndarray, np.ndarray] | None = None,
) -> Dataset:
    """A classification or regression ``Dataset`` from feature and target arrays.

    Rows are split with :func:`split_indices` unless ``val`` gives the validation arrays. With
    ``prepare``, features (and regression targets) are standardized with train statistics and class
    labels of any type are encoded as ``0..K-1``; without it the arrays are used as given.
    """
    kind = kind or infer_kind(y)
    x = np.asarray(x)
    y = np.asarray(y)
    if val is None:
        train_idx, val_idx = split_indices(len(x), val_fraction, seed)
        x_tr, y_tr, x_va, y_va = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    else:
        x_tr, y_tr, (x_va, y_va) = x, y, (np.asarray(val[0]), np.asarray(val[1]))
    if prepare:
        x_tr, x_va = standardize(x_tr.astype(np.float64), x_va.astype(np.float64), per_feature=x_tr.ndim == 2)
    if kind == "classification":
        y_tr, y_va = y_tr.reshape(len(y_tr)), y_va.reshape(len(y_va))
        if prepare:
            classes, codes = np.unique(np.concatenate([y_tr, y_va]), return_inverse=True)
            y_tr, y_va, n_outputs = codes[: len(y_tr)], codes[len(y_tr) :], len(classes)
        else:
            n_outputs = int(max(y_tr.max(), y_va.max())) + 1
        y_tr, y_va = torch.as_tensor(y_tr.astype(np.int64)), torch.as_tensor(y_va.astype(np.int64))
    else:
        y_tr, y_va = y_tr.reshape(len(y_tr), -1), y_va.reshape(len(y_va), -1)
        if prepare:  # losses then read in units of the target's spread, comparable across datasets
            y_tr, y_va = standardize(y_tr.astype(np.float64), y_va.astype(np.float64), per_feature=True)
        n_outputs = y_tr.shape[1]
        y_tr, y_va = torch.as_tensor(y_tr.astype(np.float32)), torch.as_tensor(y_va.astype(np.float32))
    return Dataset(
        name=name,
        kind=kind,
        x_train=torch.as_tensor(np.ascontiguousarray(x_tr, dtype=np.float32)),
        y_train=y_tr,
        x_val=torch.as_tensor(np.ascontiguousarray(x_va, dtype=np.float32)),
        y_val=y_va,
        n_outputs=n_outputs,
    )
