"""Turn a ``TrialConfig`` and a model into one live ``torch.optim.Optimizer``.

Parameter groups follow :mod:`optforge.engine.routing`: one group per role, tagged with ``"role"``, so
μP's per-role LR scales and weight-decay exclusions (no decay on ``vector`` parameters) are applied in
one place for every family.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from optforge.catalog import Family, get_family
from optforge.engine.routing import ParamRole, group_parameters
from optforge.spec import TrialConfig


def resolve_constructor(family: Family) -> Any:
    """Import the class or builder function that ``family.constructor`` names."""
    module_name, _, attr = family.constructor.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def constructor_kwargs(family: Family, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Catalog hyperparameters as constructor keyword arguments (``beta1``/``beta2``/``beta3`` → ``betas``)."""
    kwargs = dict(family.fixed)
    betas = [hparams[b] for b in ("beta1", "beta2", "beta3") if b in hparams] if family.pack_betas else []
    for name, value in hparams.items():
        if not (family.pack_betas and name in ("beta1", "beta2", "beta3")):
            kwargs[name] = value
    if betas:
        kwargs["betas"] = tuple(betas)
    return kwargs


def role_groups(
    model: nn.Module, *, weight_decay: float, lr: float, lr_scale: Mapping[ParamRole, float] | None = None
) -> list[dict[str, Any]]:
    """One parameter group per role, with μP's LR scale applied and no weight decay on ``vector`` params."""
    groups = []
    for role, named in group_parameters(model).items():
        scale = (lr_scale or {}).get(role, 1.0)
        groups.append(
            {
                "params": [p for _, p in named],
                "param_names": [n for n, _ in named],
                "role": role,
                "lr": lr * scale,
                "weight_decay": 0.0 if role == "vector" else weight_decay,
            }
        )
    return groups


def build_optimizer(
    model: nn.Module, config: TrialConfig, *, lr_scale: Mapping[ParamRole, float] | None = None
) -> torch.optim.Optimizer:
    """The optimizer ``config`` describes, over ``model``'s role-routed parameter groups.

    ``lr_scale`` multiplies each role's LR (μP passes its per-role factors here). Families whose
    constructor is a builder function (``routing="hidden_matrices"``, wrappers) receive the model and
    the resolved hyperparameters instead of parameter groups.
    """
    family = get_family(config.family)
    hparams = config.resolved_hparams()
    ctor = resolve_constructor(family)
    if not isinstance(ctor, type):  # a builder function: composite or wrapped optimizers
        return ctor(model, family=family, hparams=hparams, lr_scale=lr_scale or {})
    kwargs = constructor_kwargs(family, hparams)
    groups = role_groups(
        model, weight_decay=float(kwargs.pop("weight_decay", 0.0)), lr=float(kwargs.pop("lr")), lr_scale=lr_scale
    )
    return ctor(groups, **kwargs)
