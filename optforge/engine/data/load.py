"""``load_data``: the one entry to every data source, with a per-process cache.

Ray workers run many trials of the same task in one process; the cache means each worker reads,
generates and splits a dataset once instead of once per trial.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from optforge.engine.data._dataset import Dataset
from optforge.engine.data.bundled import BUNDLED, load_bundled
from optforge.engine.data.files import load_arrays
from optforge.engine.data.synthetic import load_teacher_student
from optforge.engine.data.text import load_text
from optforge.engine.data.user import load_user_data
from optforge.spec import DataSpec, SpecError

CACHE_SIZE = 4  # a worker rarely alternates between more tasks; each entry holds a whole dataset in memory

_cache: OrderedDict[str, Dataset] = OrderedDict()
_lock = threading.Lock()


def _cache_key(spec: DataSpec, seed: int) -> str:
    key = f"{spec.model_dump_json()}|seed={seed}"
    if spec.path is not None:  # a file edited in place must not be served from the cache
        try:
            stat = Path(spec.path).expanduser().stat()
            key += f"|{stat.st_mtime_ns}:{stat.st_size}"
        except OSError:
            pass  # the loader reports the missing file with the field name
    return key


def _load_uncached(spec: DataSpec, seed: int) -> Dataset:
    if spec.entrypoint is not None:
        return load_user_data(spec, seed=seed)
    if spec.kwargs and spec.name != "arrays":
        raise SpecError([("data.kwargs", f"data.name {spec.name!r} takes no kwargs; remove them")], "DataSpec")
    if spec.name in BUNDLED:
        return load_bundled(spec, seed=seed)
    if spec.name in ("teacher_student_regression", "teacher_student_classification"):
        return load_teacher_student(spec, seed=seed)
    if spec.name == "text":
        return load_text(spec)
    if spec.name == "arrays":
        return load_arrays(spec, seed=seed)
    raise SpecError([("data.name", f"no loader for {spec.name!r}")], "DataSpec")  # the spec's Literal prevents this


def load_data(spec: DataSpec, *, seed: int | None = None) -> Dataset:
    """The dataset ``spec`` describes, split deterministically by ``seed`` (default: ``spec.seed``).

    Raises SpecError (bad field, missing file) or EntryPointError (a user function that fails or
    returns the wrong thing), both before any training. Results are cached per process.
    """
    seed = spec.seed if seed is None else seed
    key = _cache_key(spec, seed)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data = _load_uncached(spec, seed)
    with _lock:
        _cache[key] = data
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return data


def clear_data_cache() -> None:
    """Forget every cached dataset (tests, or a worker that must free memory)."""
    with _lock:
        _cache.clear()
