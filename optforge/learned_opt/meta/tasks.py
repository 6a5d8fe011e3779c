"""Inner tasks for meta-training: small MLPs built by the engine, in μP (μLO) or SP (the baseline LO).

An :class:`InnerTask` is a plain description (picklable, JSON-ready); :func:`build_inner` turns it into a
model built by ``optforge.engine.build_model`` (μP with ``mup=True``), its dataset and its loss, and
:func:`inner_groups` gives the learned optimizer the same parameter groups ``build_optimizer`` gives the
``mulo`` family (μP's ``learned`` LR multipliers included), so what is meta-trained is what is shipped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from optforge.engine import Dataset, build_model, load_data
from optforge.engine.evaluation import LossFn, loss_function
from optforge.engine.mup import lr_scales
from optforge.engine.optimizers import role_groups
from optforge.learned_opt.meta.spec import TaskDistribution
from optforge.spec import TaskSpec

# Synthetic data sizes: large enough that 200 steps of 64 examples do not memorize, small enough to build fast.
SYNTHETIC = {"n_samples": 4096, "n_features": 32, "n_classes": 10}


@dataclass(frozen=True)
class InnerTask:
    """One inner training problem: an MLP on a dataset, trained for ``horizon`` steps from ``init_seed``."""

    dataset: str
    data_seed: int
    width: int
    depth: int
    horizon: int
    batch_size: int
    init_seed: int
    base_width: int
    mup: bool

    def task_spec(self) -> TaskSpec:
        data: dict[str, Any] = {"name": self.dataset, "seed": self.data_seed}
        if self.dataset.startswith("teacher_student"):
            data.update(SYNTHETIC)
        return TaskSpec.model_validate(
            {
                "model": {"name": "mlp", "width": self.width, "depth": self.depth, "base_width": self.base_width},
                "data": data,
                "batch_size": self.batch_size,
                "steps": self.horizon,
                "seed": self.init_seed,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InnerTask:
        return cls(**data)


def _log_uniform_int(rng: np.random.Generator, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_task(
    dist: TaskDistribution, rng: np.random.Generator, *, mup: bool, horizon: int | None = None
) -> InnerTask:
    """A task drawn from ``dist``: width and horizon log-uniform, depth uniform, dataset and seeds uniform."""
    dataset = str(dist.datasets[int(rng.integers(len(dist.datasets)))])
    return InnerTask(
        dataset=dataset,
        # digits is one fixed dataset (its seed only re-splits it); synthetic tasks vary their teacher.
        data_seed=0 if dataset == "digits" else int(rng.integers(dist.data_seeds)),
        width=_log_uniform_int(rng, *dist.widths),
        depth=int(rng.integers(dist.depths[0], dist.depths[1] + 1)),
        horizon=horizon or _log_uniform_int(rng, *dist.horizons),
        batch_size=dist.batch_size,
        init_seed=int(rng.integers(2**31 - 1)),
        base_width=dist.base_width,
        mup=mup,
    )


def build_inner(task: InnerTask) -> tuple[nn.Module, Dataset, LossFn]:
    """The task's freshly initialized model (seeded by ``init_seed``), its dataset and its loss."""
    spec = task.task_spec()
    data = load_data(spec.data)
    with torch.random.fork_rng():
        torch.manual_seed(task.init_seed)
        model = build_model(spec, data, mup=task.mup)
    return model, data, loss_function(data.kind)


def inner_groups(model: nn.Module, task: InnerTask) -> list[dict[str, Any]]:
    """Role-tagged parameter groups with μP's ``learned`` multipliers in their LR (as ``build_optimizer``)."""
    return role_groups(model, weight_decay=None, lr=1.0, lr_scale=lr_scales(model, "learned") if task.mup else None)


def batch(data: Dataset, task: InnerTask, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The minibatch of inner step ``step``: drawn with replacement from a generator seeded by (task, step),
    so both halves of an antithetic pair see the same data and no sampler state needs saving."""
    generator = torch.Generator().manual_seed(task.init_seed * 1_000_003 + step)
    idx = torch.randint(data.n_train, (task.batch_size,), generator=generator)
    return data.x_train[idx], data.y_train[idx]
