"""Turn a ``TrialConfig`` and a model into one live ``torch.optim.Optimizer``.

Parameter groups follow :mod:`optforge.engine.routing`: one group per role, tagged with ``"role"``
(split further where μP gives one role's parameters different LR multipliers), so μP's LR scales and
weight-decay exclusions (no decay on ``vector`` parameters) are applied in one place for every family.

A family's ``constructor`` is either an optimizer class, called as ``cls(groups, **kwargs)``, or a
builder function (composites such as Muon + AdamW, wrappers such as Lookahead), called as
``builder(model, family=..., hparams=..., lr_scale=..., total_steps=...)``. Either way the keyword
arguments are checked against the class signature first: most pytorch-optimizer classes swallow
unknown keywords through ``**kwargs``, so a misspelt hyperparameter would otherwise be ignored silently.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from optforge.catalog import Family, get_family
from optforge.engine.mup import lr_scales as mup_lr_scales
from optforge.engine.routing import group_parameters
from optforge.spec import TrialConfig

# Keywords that pytorch-optimizer reads from the parameter groups through ``**kwargs`` rather than
# naming them in the signature. ``cautious`` (Liang et al. 2024) is read with ``group.get("cautious")``
# by Lion, ADOPT, LaProp, AdamP, AdEMAMix and others; tests/engine/test_families_flags.py proves each
# family that offers it really changes its update.
PASSTHROUGH_KWARGS = frozenset({"cautious"})


def resolve_constructor(family: Family) -> Any:
    """Import the class or builder function that ``family.constructor`` names."""
    module_name, _, attr = family.constructor.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def constructor_kwargs(family: Family, hparams: Mapping[str, Any], *, total_steps: int | None = None) -> dict[str, Any]:
    """Catalog hyperparameters as constructor keyword arguments.

    ``beta1``/``beta2``/``beta3`` are packed into ``betas`` (in that order) when the family packs betas;
    ``family.fixed`` is always included; the step budget goes to ``family.total_steps_arg`` if it has one
    (ValueError naming ``total_steps`` when it is missing).
    """
    kwargs = dict(family.fixed)
    packed = ("beta1", "beta2", "beta3") if family.pack_betas else ()
    for name, value in hparams.items():
        if name not in packed:
            kwargs[name] = value
    betas = [hparams[b] for b in packed if b in hparams]
    if betas:
        kwargs["betas"] = tuple(betas)
    if family.total_steps_arg is not None:
        if total_steps is None:
            raise ValueError(
                f"optimizer family {family.name!r} needs the trial's step budget for {family.total_steps_arg!r}: "
                "pass total_steps=<number of optimizer steps> to build_optimizer"
            )
        kwargs[family.total_steps_arg] = int(total_steps)
    return kwargs


@functools.cache
def _signature_names(cls: type) -> tuple[frozenset[str], bool]:
    params = inspect.signature(cls.__init__).parameters.values()
    named = frozenset(p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
    return named - {"self", "params"}, any(p.kind is p.VAR_KEYWORD for p in params)


def unknown_kwargs(cls: type, names: Iterable[str]) -> list[str]:
    """The keyword names ``cls.__init__`` does not declare (``cautious`` passes where ``**kwargs`` exists)."""
    declared, has_var_kwargs = _signature_names(cls)
    allowed = declared | (PASSTHROUGH_KWARGS if has_var_kwargs else frozenset())
    return sorted(set(names) - allowed)


def construct(cls: type[torch.optim.Optimizer], params: Any, kwargs: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``cls(params, **kwargs)`` after checking every keyword against the signature (TypeError otherwise)."""
    unknown = unknown_kwargs(cls, kwargs)
    if unknown:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} takes no argument(s) {unknown}; check the catalog entry")
    return cls(params, **kwargs)


def role_groups(
    model: nn.Module,
    *,
    weight_decay: float | None,
    lr: float,
    lr_scale: Mapping[str, float] | None = None,
    params: Iterable[nn.Parameter] | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups by role, with μP's LR scale applied and no weight decay on ``vector`` params.

    ``lr_scale`` maps a role (``"hidden"``) or a parameter's qualified name (``"blocks.0.fc.weight"``, as
    :func:`optforge.engine.mup.lr_scales` gives) to an LR multiplier; a name wins over its role. A role
    whose parameters get different multipliers is split into one group per multiplier. Each group
    records its multiplier as ``"lr_scale"``. ``weight_decay=None`` leaves non-vector groups at the
    optimizer's own default. ``params`` restricts the groups to those parameters (builders route the
    rest elsewhere); roles left empty are dropped.
    """
    keep = None if params is None else {id(p) for p in params}
    scales = lr_scale or {}
    groups = []
    for role, named in group_parameters(model).items():
        by_scale: dict[float, list[tuple[str, nn.Parameter]]] = {}
        for n, p in named:
            if keep is None or id(p) in keep:
                by_scale.setdefault(float(scales.get(n, scales.get(role, 1.0))), []).append((n, p))
        for scale, members in by_scale.items():
            group: dict[str, Any] = {
                "params": [p for _, p in members],
                "param_names": [n for n, _ in members],
                "role": role,
                "lr": lr * scale,
                "lr_scale": scale,
            }
            if role == "vector":
                group["weight_decay"] = 0.0
            elif weight_decay is not None:
                group["weight_decay"] = weight_decay
            groups.append(group)
    return groups


def decouple_decay_from_lr_scale(optimizer: torch.optim.Optimizer) -> None:
    """Divide each group's weight decay by its ``lr_scale``, so the decay per step (lr x weight_decay, as
    AdamW, Lion and torch's SGD apply it) stays the same whatever μP does to the group's LR.

    This is what ``mup.MuAdam``/``MuSGD`` do (weight_decay x width_mult where lr / width_mult); without it
    the hidden weights of a wide model would barely be decayed. Groups without an ``lr_scale`` are left alone.
    """
    for group in optimizer.param_groups:
        scale = group.get("lr_scale", 1.0)
        if scale != 1.0 and group.get("weight_decay"):
            group["weight_decay"] = group["weight_decay"] / scale


def build_family(
    model: nn.Module,
    family: Family,
    hparams: Mapping[str, Any],
    *,
    lr_scale: Mapping[str, float] | None = None,
    total_steps: int | None = None,
) -> torch.optim.Optimizer:
    """The optimizer of ``family`` with resolved ``hparams`` over ``model`` (see :func:`build_optimizer`)."""
    ctor = resolve_constructor(family)
    if isinstance(ctor, type):
        kwargs = constructor_kwargs(family, hparams, total_steps=total_steps)
        wd = kwargs.get("weight_decay")
        groups = role_groups(
            model, weight_decay=None if wd is None else float(wd), lr=float(kwargs["lr"]), lr_scale=lr_scale
        )
        # lr and weight_decay also go to the constructor: some derive state from them (MARS's 1-D LR ratio,
        # Ranger21's warm-down start), while each group's own values override them for the update.
        optimizer = construct(ctor, groups, kwargs)
    else:
        optimizer = ctor(model, family=family, hparams=hparams, lr_scale=lr_scale or {}, total_steps=total_steps)
    if family.schedule_free:
        optimizer.train()  # schedulefree's optimizers start in eval mode and refuse to step there
    return optimizer


def build_optimizer(
    model: nn.Module,
    config: TrialConfig,
    *,
    lr_scale: Mapping[str, float] | None = None,
    total_steps: int | None = None,
) -> torch.optim.Optimizer:
    """The optimizer ``config`` describes, over ``model``'s role-routed parameter groups, ready to step.

    ``lr_scale`` multiplies each role's or parameter's LR (see :func:`role_groups`). With ``config.mup`` it
    defaults to μP's multipliers for the family's ``mup_rule`` (``model`` must come from
    ``build_model(..., mup=True)``; MupError otherwise), and the decay per step is kept
    (:func:`decouple_decay_from_lr_scale`). ``total_steps`` is the trial's step budget; families with a
    built-in horizon (``Family.total_steps_arg``: Ranger21, AdEMAMix) need it and raise ValueError
    without it. Schedule-free optimizers come back in train mode.
    """
    family = get_family(config.family)
    if config.mup and lr_scale is None:
        # The model records which dimensions scale (build_model(..., mup=True)); the family says how its
        # update scales. MupError names the fix when the model was built without μP.
        lr_scale = mup_lr_scales(model, family.mup_rule)
    optimizer = build_family(model, family, config.resolved_hparams(), lr_scale=lr_scale, total_steps=total_steps)
    if config.mup:
        decouple_decay_from_lr_scale(optimizer)
    return optimizer
