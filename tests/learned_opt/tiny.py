"""The smallest meta-training spec that exercises every part: two outer steps, two pairs, width 8-16 MLPs."""

from __future__ import annotations

from typing import Any

TINY: dict[str, Any] = {
    "name": "tiny",
    "tasks": {
        "widths": [8, 16],
        "depths": [2, 2],
        "horizons": [6, 10],
        "datasets": ["teacher_student_classification"],
        "data_seeds": 1,
    },
    "outer": {"steps": 2, "truncation": 4, "n_tasks": 2, "warmup_steps": 1},
    "eval": {"every": 1, "n_tasks": 1, "horizon": 6},
    "checkpoint_every": 1,
    "workers": 0,
}
