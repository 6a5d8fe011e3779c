"""Synthetic teacher-student data: a random MLP (the teacher) labels Gaussian inputs.

``difficulty`` turns two knobs at once: the teacher's depth (``round(difficulty)`` tanh layers,
clamped to 1..8) and the label noise (std ``0.1 x difficulty`` on the standardized teacher outputs).
Around 0.5-3 the task is learnable but not trivial for the default MLP; beyond 10 noise dominates.
"""

from __future__ import annotations

import numpy as np

from optforge.engine.data._dataset import Dataset
from optforge.engine.data._prepare import from_arrays
from optforge.spec import DataSpec

TEACHER_WIDTH = 64  # wide enough that the teacher is not linear-ish, small enough to generate instantly
MAX_TEACHER_DEPTH = 8  # deeper random tanh nets collapse towards constant functions


def teacher_outputs(x: np.ndarray, n_out: int, difficulty: float, rng: np.random.Generator) -> np.ndarray:
    """Outputs of a random tanh MLP on ``x``, each column standardized over the samples."""
    depth = int(np.clip(round(difficulty), 1, MAX_TEACHER_DEPTH))
    h = x
    for _ in range(depth):
        # 1/fan_in variance keeps pre-activations near unit scale, where tanh is clearly nonlinear.
        w = rng.standard_normal((h.shape[1], TEACHER_WIDTH)) / np.sqrt(h.shape[1])
        h = np.tanh(h @ w + 0.1 * rng.standard_normal(TEACHER_WIDTH))
    out = h @ (rng.standard_normal((TEACHER_WIDTH, n_out)) / np.sqrt(TEACHER_WIDTH))
    return (out - out.mean(axis=0)) / out.std(axis=0).clip(min=1e-8)


def load_teacher_student(spec: DataSpec, *, seed: int) -> Dataset:
    """Regression (one target) or ``n_classes``-way classification labelled by a random teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec.n_samples, spec.n_features))
    noise = 0.1 * spec.difficulty
    if spec.name == "teacher_student_regression":
        y = teacher_outputs(x, 1, spec.difficulty, rng)
        y = y + noise * rng.standard_normal(y.shape)
        kind = "regression"
    else:
        # Standardized logits give roughly balanced classes; the noise flips labels near the boundaries.
        logits = teacher_outputs(x, spec.n_classes, spec.difficulty, rng)
        y = np.argmax(logits + noise * rng.standard_normal(logits.shape), axis=1)
        kind = "classification"
    return from_arrays(spec.name or "", x, y, seed=seed, val_fraction=spec.val_fraction, kind=kind)
