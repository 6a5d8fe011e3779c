"""μLO, the μP-scaled learned optimizer (Thérien et al. 2024), with optforge's meta-trained weights.

``MuLO(model.parameters())`` trains with zero tuning; ``StandardLO`` is the same network meta-trained in
the standard parametrization, for comparison. Meta-training (``optforge meta-train``) lives in
:mod:`optforge.learned_opt.meta`. See docs/learned_opt.md.

Names are imported lazily, so reading the meta-training spec (``MetaTrainSpec``) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FEATURE_NAMES": "optforge.learned_opt.features",
    "LearnedWeights": "optforge.learned_opt.weights",
    "MetaCallback": "optforge.learned_opt.meta.trainer",
    "MetaTrainResult": "optforge.learned_opt.meta.trainer",
    "MetaTrainSpec": "optforge.learned_opt.meta.spec",
    "MetaTrainer": "optforge.learned_opt.meta.trainer",
    "MuLO": "optforge.learned_opt.optimizer",
    "StandardLO": "optforge.learned_opt.optimizer",
    "UpdateNetwork": "optforge.learned_opt.network",
    "param_groups": "optforge.learned_opt.groups",
    "shipped_weights": "optforge.learned_opt.weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optforge.learned_opt' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
