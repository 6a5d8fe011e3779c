"""Data from the user's own function (``data.entrypoint: "package.module:function"``).

The function is called with its ``data.kwargs`` plus, when its signature asks for them, ``seed`` (the
data seed) and ``val_fraction``. It returns one of:

- a mapping with ``x`` and ``y`` (optforge splits them), or with ``x_train``, ``y_train``, ``x_val``
  and ``y_val``; it may add ``kind`` (``classification`` | ``regression`` | ``lm``) and ``n_outputs``;
- a tuple ``(x, y)`` or ``(x_train, y_train, x_val, y_val)``;
- an :class:`optforge.engine.data.Dataset`.

Arrays may be numpy arrays or torch tensors and are used as given (not standardized). Without
``kind``, floating-point ``y`` means regression and integer ``y`` classification; ``lm`` must be named
and needs int64 token ids ``x`` and ``y`` of shape ``(N, seq_len)``. ``n_outputs`` defaults to the
largest label (or token id) + 1, or to the number of regression targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from optforge.engine.data._dataset import Dataset
from optforge.engine.data._prepare import from_arrays, split_indices
from optforge.engine.entrypoints import EntryPointError, call_with_supported, load_entrypoint
from optforge.spec import DataSpec

SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val")


def _as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _unpack(returned: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, options)`` from whatever the function returned; ValueError saying what is accepted."""
    if isinstance(returned, Mapping):
        options = {k: returned[k] for k in ("kind", "n_outputs") if k in returned}
        if all(k in returned for k in SPLIT_KEYS):
            return {k: _as_numpy(returned[k]) for k in SPLIT_KEYS}, options
        if "x" in returned and "y" in returned:
            return {"x": _as_numpy(returned["x"]), "y": _as_numpy(returned["y"])}, options
        raise ValueError(
            f"returned a mapping with keys {sorted(map(str, returned))}; expected 'x' and 'y', "
            "or 'x_train', 'y_train', 'x_val' and 'y_val'"
        )
    if isinstance(returned, Sequence) and len(returned) in (2, 4):
        keys = ("x", "y") if len(returned) == 2 else SPLIT_KEYS
        return {k: _as_numpy(v) for k, v in zip(keys, returned, strict=True)}, {}
    raise ValueError(
        f"returned {type(returned).__name__}; expected a mapping, a tuple (x, y) or "
        "(x_train, y_train, x_val, y_val), or an optforge Dataset"
    )


def _lm_dataset(name: str, arrays: dict[str, np.ndarray], n_outputs: int | None, spec: DataSpec, seed: int) -> Dataset:
    if "x" in arrays:
        train_idx, val_idx = split_indices(len(arrays["x"]), spec.val_fraction, seed)
        arrays = {
            "x_train": arrays["x"][train_idx],
            "y_train": arrays["y"][train_idx],
            "x_val": arrays["x"][val_idx],
            "y_val": arrays["y"][val_idx],
        }
    tensors = {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in arrays.items()}
    if n_outputs is None:
        n_outputs = int(max(int(t.max()) for t in tensors.values())) + 1
    return Dataset(name=name, kind="lm", n_outputs=int(n_outputs), **tensors)


def load_user_data(spec: DataSpec, *, seed: int) -> Dataset:
    """Call the user's data function and check what it returned; EntryPointError names the function."""
    ref = spec.entrypoint or ""
    fn = load_entrypoint(ref, field="data.entrypoint")
    returned = call_with_supported(
        fn, {"seed": seed, "val_fraction": spec.val_fraction}, spec.kwargs, field="data.entrypoint"
    )
    if isinstance(returned, Dataset):
        return returned
    name = f"entrypoint:{ref}"
    try:
        arrays, options = _unpack(returned)
        kind = options.get("kind")
        if kind == "lm":
            return _lm_dataset(name, arrays, options.get("n_outputs"), spec, seed)
        if kind not in (None, "classification", "regression"):
            raise ValueError(f"kind must be 'classification', 'regression' or 'lm', got {kind!r}")
        val = (arrays["x_val"], arrays["y_val"]) if "x_val" in arrays else None
        x, y = (arrays["x_train"], arrays["y_train"]) if val else (arrays["x"], arrays["y"])
        data = from_arrays(name, x, y, seed=seed, val_fraction=spec.val_fraction, kind=kind, prepare=False, val=val)
        if "n_outputs" in options and data.kind == "classification":
            data = replace(data, n_outputs=int(options["n_outputs"]))
        return data
    except (ValueError, TypeError, IndexError) as exc:
        raise EntryPointError(f"data.entrypoint: {ref}: {exc}") from exc
