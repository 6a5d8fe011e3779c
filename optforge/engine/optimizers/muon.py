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
from optforge.engine.optimizers.build import construct, role_groups
from optforge.engine.optimizers.composite import CompositeOptimizer
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
    """``torch.optim.Muon`` over the 2-D ``hidden`` parameters plus ``torch.optim.AdamW`` over the rest.

    Every group carries ``spectral``: True for the Muon part, False for the AdamW part.
    """
    wd = float(hparams["weight_decay"])
    matrices = hidden_matrices(model)
    muon_groups = role_groups(model, weight_decay=wd, lr=float(hparams["lr"]), lr_scale=lr_scale, params=matrices)
    adamw_groups = role_groups(
        model,
        weight_decay=wd,
        lr=float(hparams["adamw_lr"]),
        lr_scale=lr_scale,
        params=other_parameters(model, matrices),
    )
    parts: list[torch.optim.Optimizer] = []
    if muon_groups:
        kwargs = {
            "lr": float(hparams["lr"]),
            "momentum": float(hparams["momentum"]),
            "nesterov": True,
            "weight_decay": wd,
            "ns_steps": int(hparams["ns_steps"]),
        }
        parts.append(construct(torch.optim.Muon, [{**g, "spectral": True} for g in muon_groups], kwargs))
    if adamw_groups:
        groups = [{**g, "spectral": False} for g in adamw_groups]
        parts.append(construct(torch.optim.AdamW, groups, {"lr": float(hparams["adamw_lr"])}))
    return CompositeOptimizer(parts)
