"""Muon on 2-D hidden weights, AdamW on everything else, as one optimizer object.

Muon orthogonalizes each hidden matrix's momentum with Newton-Schulz iterations (Jordan et al. 2024).
Do *not* use it for embeddings, the readout, biases or norm gains: their updates are not matrix-shaped
in the sense Muon assumes, which is why those go to the auxiliary AdamW here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from optforge.catalog import Family
from optforge.engine.optimizers.composite import CompositeOptimizer
from optforge.engine.routing import ParamRole, group_parameters


def build(
    model: nn.Module, *, family: Family, hparams: Mapping[str, Any], lr_scale: Mapping[ParamRole, float]
) -> torch.optim.Optimizer:
    """``torch.optim.Muon`` over the 2-D ``hidden`` parameters plus ``torch.optim.AdamW`` over the rest."""
    groups = group_parameters(model)
    muon_params = [p for _, p in groups.get("hidden", []) if p.ndim == 2]
    muon_ids = {id(p) for p in muon_params}
    adamw_groups = []
    for role, named in groups.items():
        params = [p for _, p in named if id(p) not in muon_ids]
        if params:
            adamw_groups.append(
                {
                    "params": params,
                    "role": role,
                    "lr": float(hparams["adamw_lr"]) * lr_scale.get(role, 1.0),
                    "weight_decay": 0.0 if role == "vector" else float(hparams["weight_decay"]),
                }
            )
    parts: list[torch.optim.Optimizer] = []
    if muon_params:
        parts.append(
            torch.optim.Muon(
                [{"params": muon_params, "role": "hidden", "lr": float(hparams["lr"]) * lr_scale.get("hidden", 1.0)}],
                lr=float(hparams["lr"]),
                momentum=float(hparams["momentum"]),
                nesterov=True,
                weight_decay=float(hparams["weight_decay"]),
                ns_steps=int(hparams["ns_steps"]),
            )
        )
    if adamw_groups:
        parts.append(torch.optim.AdamW(adamw_groups, lr=float(hparams["adamw_lr"])))
    return CompositeOptimizer(parts)
