"""Task fingerprints: which stored results are about the same training problem, and how near the others are.

A fingerprint is a SHA-256 over the *training-relevant* fields of a ``TaskSpec`` in canonical JSON: the
model (builtin or entry point, width, depth, kwargs), the dataset fields that actually shape that dataset,
the batch size, the step budget and the precision. Fields that do not change what the optimizer sees
(seeds, device, evaluation cadence, metric, target) are left out, so re-running a task with another seed
finds its earlier results.

``TaskFeatures`` is the numeric side: ``distance`` compares two tasks on a normalized scale where one
unit is "a different model or dataset", and sizes are compared in octaves (factors of two).

Imports only the standard library and ``optforge.spec`` (no torch, no SQLAlchemy).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from optforge.spec import TaskSpec

# Bump when the canonical form changes: old fingerprints then stop matching exactly (nearest still works).
FINGERPRINT_VERSION = 1

# Sizes of scikit-learn's bundled datasets (sklearn.datasets.load_*), so that their features need no sklearn.
BUNDLED_DATASET_SIZES = {"digits": 1797, "breast_cancer": 569, "wine": 178, "iris": 150, "diabetes": 442}

# Data fields that shape each builtin dataset; every other DataSpec field is ignored for it. An entry-point
# dataset keeps every field, since we cannot know which ones its function reads.
_DATA_FIELDS: dict[str, tuple[str, ...]] = {
    **{name: () for name in BUNDLED_DATASET_SIZES},
    "teacher_student_regression": ("n_samples", "n_features", "difficulty"),
    "teacher_student_classification": ("n_samples", "n_features", "n_classes", "difficulty"),
    "text": ("path", "seq_len", "max_chars"),
    "arrays": ("path", "target"),
}
_COMMON_DATA_FIELDS = ("val_fraction", "kwargs")
# A seed draws another sample of the same problem (like TaskSpec.seed): its best configurations carry over.
_IGNORED_DATA_FIELDS = ("seed",)

# One unit of distance per this many octaves of difference. Width and batch size move the best LR a lot
# per doubling; depth even more (hence 2); budgets and dataset sizes change it slowly.
OCTAVES_PER_UNIT = {
    "width": 4.0,
    "depth": 2.0,
    "param_count": 6.0,
    "dataset_size": 6.0,
    "batch_size": 4.0,
    "steps": 6.0,
}
# Distance contributed by a feature known for one task but not the other: "probably different".
MISSING_FEATURE_DISTANCE = 0.5


@dataclass(frozen=True)
class TaskFeatures:
    """What ``distance`` compares. ``model``/``dataset`` are categories; the rest are sizes (None: unknown)."""

    model: str
    dataset: str
    width: int
    depth: int
    batch_size: int
    steps: int
    param_count: int | None = None
    dataset_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskFeatures:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def canonical_task(task: TaskSpec) -> dict[str, Any]:
    """The training-relevant fields of ``task``, as plain JSON-able data."""
    model = task.model
    data = task.data
    dataset = data.name or f"entrypoint:{data.entrypoint}"
    every_field = tuple(name for name in type(data).model_fields if name not in _IGNORED_DATA_FIELDS)
    fields = _DATA_FIELDS.get(data.name or "", every_field)
    data_part = {name: getattr(data, name) for name in (*fields, *_COMMON_DATA_FIELDS)}
    return {
        "version": FINGERPRINT_VERSION,
        "model": {
            "source": model.name or f"entrypoint:{model.entrypoint}",
            "width": model.width,
            "depth": model.depth,
            "kwargs": model.kwargs,
        },
        "data": {"source": dataset, **data_part},
        "batch_size": task.batch_size,
        "steps": task.steps,
        "precision": task.precision,
    }


def task_fingerprint(task: TaskSpec) -> str:
    """64 hex characters; equal for tasks that train identically."""
    text = json.dumps(canonical_task(task), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def task_features(task: TaskSpec, *, param_count: int | None = None) -> TaskFeatures:
    """The feature vector of ``task``; ``param_count`` if the caller knows it (the engine does after building)."""
    data = task.data
    size: int | None = None
    if data.name in BUNDLED_DATASET_SIZES:
        size = BUNDLED_DATASET_SIZES[data.name]
    elif data.name in ("teacher_student_regression", "teacher_student_classification"):
        size = data.n_samples
    elif data.name == "text" and data.max_chars is not None:
        size = data.max_chars // data.seq_len  # training sequences, the unit the batch size counts
    return TaskFeatures(
        model=task.model.name or f"entrypoint:{task.model.entrypoint}",
        dataset=data.name or f"entrypoint:{data.entrypoint}",
        width=task.model.width,
        depth=task.model.depth,
        batch_size=task.batch_size,
        steps=task.steps,
        param_count=param_count,
        dataset_size=size,
    )


def distance(a: TaskFeatures, b: TaskFeatures) -> float:
    """Root-mean-square of per-feature distances: 0 for identical tasks, about 1 for unrelated ones.

    Categories contribute 0 or 1; sizes contribute ``|log2 a - log2 b| / OCTAVES_PER_UNIT[feature]``; a size
    known on one side only contributes ``MISSING_FEATURE_DISTANCE``.
    """
    parts = [float(a.model != b.model), float(a.dataset != b.dataset)]
    for name, octaves in OCTAVES_PER_UNIT.items():
        x, y = getattr(a, name), getattr(b, name)
        if x is None and y is None:
            parts.append(0.0)
        elif x is None or y is None:
            parts.append(MISSING_FEATURE_DISTANCE)
        else:
            parts.append(abs(math.log2(max(x, 1)) - math.log2(max(y, 1))) / octaves)
    return math.sqrt(sum(p * p for p in parts) / len(parts))
