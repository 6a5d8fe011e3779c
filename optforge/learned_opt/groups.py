"""Parameter groups for the learned optimizer over a whole model, with the engine's roles and μP."""

from __future__ import annotations

from typing import Any

from torch import nn

from optforge.engine.mup import is_mup, lr_scales
from optforge.engine.optimizers import role_groups
from optforge.engine.routing import group_parameters


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Role-tagged groups for ``MuLO(param_groups(model))``.

    For a μP model (``build_model(..., mup=True)``) these are exactly the groups ``build_optimizer`` gives
    the ``mulo`` family: μP's ``learned`` multipliers (μ(p)) sit in each group's LR and ``lr_scale``. For
    any other model the groups carry only their role, and MuLO applies μ(p) itself from its base width.
    """
    if is_mup(model):
        return role_groups(model, weight_decay=None, lr=1.0, lr_scale=lr_scales(model, "learned"))
    return [{"params": [p for _, p in named], "role": role} for role, named in group_parameters(model).items()]
