"""Parameter-group routing, shared by weight decay, μP and the hidden-matrix families (Muon, ...).

Every parameter gets exactly one role:

- ``input``: weights that read the data (the first layer, embeddings). μP: LR multiplier 1.
- ``hidden``: weights that map hidden to hidden (fan-in grows with width). μP: LR scaled down.
- ``readout``: the layer that produces the output. μP: zero init and a 1/width output multiplier.
- ``vector``: biases, norm gains and every other tensor with fewer than 2 dimensions. No weight decay.

Built-in workloads mark their input and readout modules with :func:`mark_role`. For a user's model the
roles are inferred: embeddings and the first weight layer are ``input``, the last ``nn.Linear`` is the
``readout``, other weights with 2 or more dimensions are ``hidden``. Mark modules yourself when that
guess is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from torch import nn

ParamRole = Literal["input", "hidden", "readout", "vector"]
ROLES: tuple[ParamRole, ...] = ("input", "hidden", "readout", "vector")
_ROLE_ATTR = "_optforge_role"


def mark_role(module: nn.Module, role: ParamRole) -> nn.Module:
    """Declare the role of ``module``'s weight parameters (its 1-D parameters stay ``vector``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    setattr(module, _ROLE_ATTR, role)
    return module


def classify_parameters(model: nn.Module) -> dict[str, ParamRole]:
    """The role of every trainable parameter of ``model``, keyed by its qualified name."""
    roles: dict[str, ParamRole] = {}
    weight_modules: list[tuple[str, nn.Module]] = []
    marked = False
    for mod_name, module in model.named_modules():
        role = getattr(module, _ROLE_ATTR, None)
        marked = marked or role is not None
        for p_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            if param.ndim < 2:
                roles[name] = "vector"
            elif role is not None:
                roles[name] = role
            elif isinstance(module, nn.Embedding):
                roles[name] = "input"
            else:
                roles[name] = "hidden"
                weight_modules.append((name, module))
    if not marked and weight_modules:
        # Unmarked (user) model: the first weight layer reads the data, the last Linear writes the output.
        first_name, _ = weight_modules[0]
        embedded = any(r == "input" for r in roles.values())  # an embedding already reads the data
        if not embedded:
            roles[first_name] = "input"
        linears = [n for n, m in weight_modules if isinstance(m, nn.Linear)]
        if linears and (embedded or linears[-1] != first_name):  # a lone layer stays input: it reads the data
            roles[linears[-1]] = "readout"
    return roles


def group_parameters(model: nn.Module) -> dict[ParamRole, list[tuple[str, nn.Parameter]]]:
    """``model``'s trainable parameters grouped by role, in registration order (roles with none are omitted)."""
    roles = classify_parameters(model)
    groups: dict[ParamRole, list[tuple[str, nn.Parameter]]] = defaultdict(list)
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if name in roles and id(param) not in seen:  # tied weights are optimized once
            seen.add(id(param))
            groups[roles[name]].append((name, param))
    return {role: groups[role] for role in ROLES if groups[role]}
