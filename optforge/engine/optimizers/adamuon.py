"""AdaMuon on 2-D hidden weights and its built-in AdamW on the rest, as pytorch-optimizer ships it.

AdaMuon (Si et al. 2025) orthogonalizes the momentum like Muon, then rescales it element-wise by a
second moment of the orthogonalized update. pytorch-optimizer's ``AdaMuon`` already holds both parts in
one optimizer, switched per group by ``use_muon``; this builder only routes parameters into those groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pytorch_optimizer import AdaMuon
from torch import nn

from optforge.catalog import Family
from optforge.engine.optimizers.build import construct, role_groups
from optforge.engine.optimizers.hidden import hidden_matrices, other_parameters
from optforge.engine.routing import ParamRole


def build(
    model: nn.Module,
    *,
    family: Family,
    hparams: Mapping[str, Any],
    lr_scale: Mapping[ParamRole, float],
    total_steps: int | None = None,
) -> torch.optim.Optimizer:
    """One ``AdaMuon``: ``use_muon`` groups for the 2-D hidden weights, AdamW groups for the rest.

    Every group carries ``spectral`` (True exactly for the ``use_muon`` groups).
    """
    wd = float(hparams["weight_decay"])
    matrices = hidden_matrices(model)
    muon_groups = role_groups(model, weight_decay=wd, lr=float(hparams["lr"]), lr_scale=lr_scale, params=matrices)
    rest = other_parameters(model, matrices)
    adamw_groups = role_groups(model, weight_decay=wd, lr=float(hparams["adamw_lr"]), lr_scale=lr_scale, params=rest)
    groups = [{**g, "use_muon": True, "spectral": True} for g in muon_groups]
    groups += [{**g, "use_muon": False, "spectral": False} for g in adamw_groups]
    kwargs = {
        "lr": float(hparams["lr"]),
        "betas": (float(hparams["beta1"]), float(hparams["beta2"])),
        "weight_decay": wd,
        "ns_steps": int(hparams["ns_steps"]),
        "adamw_lr": float(hparams["adamw_lr"]),
        "eps": float(hparams["eps"]),
    }
    return construct(AdaMuon, groups, kwargs)
