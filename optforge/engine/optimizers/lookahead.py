"""Lookahead (Zhang et al. 2019) around an inner optimizer chosen from the catalog.

The inner optimizer is built exactly as its own family would be (same routing, μP scales and weight-decay
exclusions), then pytorch-optimizer's ``Lookahead`` keeps slow weights and pulls the fast ones back
toward them every ``k`` steps by ``alpha``. The catalog limits the inner choice to families that share
AdamW's LR and decay scale, so one ``lr`` range fits them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pytorch_optimizer import Lookahead
from torch import nn

from optforge.catalog import Family, get_family
from optforge.engine.optimizers.build import build_family, construct
from optforge.engine.routing import ParamRole

# Lookahead's own hyperparameters; every other one is handed to the inner family.
OWN_HPARAMS = frozenset({"inner", "k", "alpha"})


def build(
    model: nn.Module,
    *,
    family: Family,
    hparams: Mapping[str, Any],
    lr_scale: Mapping[ParamRole, float],
    total_steps: int | None = None,
) -> torch.optim.Optimizer:
    """``Lookahead(inner, k, alpha)``; ``param_groups`` are the inner optimizer's groups."""
    inner_family = get_family(str(hparams["inner"]))
    shared = {name: value for name, value in hparams.items() if name not in OWN_HPARAMS}
    inner = build_family(model, inner_family, inner_family.resolve(shared), lr_scale=lr_scale, total_steps=total_steps)
    return construct(Lookahead, inner, {"k": int(hparams["k"]), "alpha": float(hparams["alpha"])})
