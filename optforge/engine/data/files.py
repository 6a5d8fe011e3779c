"""User arrays from ``.npz``, ``.csv`` or ``.parquet`` files (``data.name: arrays``).

- ``.npz``: arrays ``x`` and ``y`` (or ``X`` and ``y``), split by optforge; or ``x_train``,
  ``y_train``, ``x_val``, ``y_val`` for a split of your own. ``x`` may be ``(N, features)``,
  ``(N, H, W)`` or ``(N, C, H, W)`` (images, for the cnn).
- ``.csv`` / ``.parquet``: one row per example; the ``data.target`` column (default: the last) is the
  target, every other column a numeric feature.

Integer, boolean or string targets make a classification task, floating-point targets a regression;
``data.kwargs.kind`` (``classification`` | ``regression``) overrides that guess. Features, and
regression targets, are standardized with train statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optforge.engine.data._dataset import Dataset
from optforge.engine.data._prepare import from_arrays
from optforge.spec import DataSpec, SpecError

SUFFIXES = (".npz", ".csv", ".parquet")
KWARGS = {"kind": ("classification", "regression")}


def _error(field: str, message: str) -> SpecError:
    return SpecError([(field, message)], "DataSpec")


def _kind(spec: DataSpec) -> Any:
    unknown = sorted(set(spec.kwargs) - set(KWARGS))
    if unknown:
        raise _error(f"data.kwargs.{unknown[0]}", f"'arrays' data takes only these kwargs: {', '.join(KWARGS)}")
    kind = spec.kwargs.get("kind")
    if kind is not None and kind not in KWARGS["kind"]:
        raise _error("data.kwargs.kind", f"must be one of {list(KWARGS['kind'])}, got {kind!r}")
    return kind


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)
        if {"x_train", "y_train", "x_val", "y_val"} <= keys:
            return npz["x_train"], npz["y_train"], (npz["x_val"], npz["y_val"])
        for x_key in ("x", "X"):
            if x_key in keys and "y" in keys:
                return npz[x_key], npz["y"], None
    raise _error(
        "data.path",
        f"{path.name} holds arrays {sorted(keys)}; expected 'x' and 'y' (or 'X' and 'y'), "
        "or 'x_train', 'y_train', 'x_val' and 'y_val'",
    )


def _read_table(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd  # deferred: only tables need pandas

    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    if frame.shape[1] < 2:
        raise _error("data.path", f"{path.name} has {frame.shape[1]} column(s); need features and a target")
    target = target if target is not None else str(frame.columns[-1])
    if target not in frame.columns:
        raise _error(
            "data.target", f"no column {target!r} in {path.name}; columns: {', '.join(map(str, frame.columns))}"
        )
    features = frame.drop(columns=[target])
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise _error("data.path", f"feature columns {non_numeric} are not numeric; encode them (e.g. one-hot) first")
    x = features.to_numpy(dtype=np.float64)
    if np.isnan(x).any() or frame[target].isna().any():
        raise _error("data.path", f"{path.name} has missing values; fill or drop them first")
    return x, frame[target].to_numpy()


def load_arrays(spec: DataSpec, *, seed: int) -> Dataset:
    """The dataset in the file ``data.path`` names, split by ``seed`` unless the file holds its own split."""
    path = Path(spec.path or "").expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _error("data.path", f"{path.name!r} must end in one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise _error("data.path", f"no such file: {path}")
    kind = _kind(spec)
    try:
        if suffix == ".npz":
            x, y, val = _read_npz(path)
        else:
            (x, y), val = _read_table(path, spec.target), None
    except SpecError:
        raise
    except Exception as exc:  # a corrupt or mis-formatted file is bad input, not a failed trial
        raise _error("data.path", f"cannot read {path.name}: {type(exc).__name__}: {exc}") from None
    try:
        return from_arrays(f"arrays:{path.name}", x, y, seed=seed, val_fraction=spec.val_fraction, kind=kind, val=val)
    except ValueError as exc:
        raise _error("data.path", f"{path.name}: {exc}") from None
