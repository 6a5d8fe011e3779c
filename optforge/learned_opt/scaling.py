"""μP for the learned optimizer: the per-tensor update multiplier μ(p), and roles for untagged parameters.

μLO (Thérien et al. 2024) multiplies the update of hidden weights (width × width matrices, whose fan-in
grows with the model) by 1/fan_in and leaves every other tensor's update alone. optforge states it
*relative to a base width* B, as μP's LR multipliers are: μ(p) = B / in_width(p) for hidden weights, 1
for input, readout and vector parameters, where in_width(p) = p.shape[1] (a Linear's in_features, a
convolution's in_channels: the part of the fan-in that grows with width; kernel sizes do not). At the
base width μ(p) = 1, so the two forms differ only by a constant that meta-training absorbs; the relative
form keeps the meta-trained step meaningful (at width B a hidden coordinate moves as much as an input
coordinate) and is exactly the engine's μP ``learned`` rule (1/r_in, :mod:`optforge.engine.mup.rules`).
Doubling the width halves every hidden update: μLO is width-independent. B is stored with the weights
(``base_width``, the engine's default 128) and must be the base width of the μP model being trained.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optforge.engine.routing import ROLES, ParamRole


def in_width(p: torch.Tensor) -> int:
    """The input dimension of a weight (``p.shape[1]``), the part of its fan-in that scales with width."""
    return int(p.shape[1]) if p.ndim >= 2 else 1


def update_multiplier(p: torch.Tensor, role: ParamRole, *, mup: bool, base_width: int) -> float:
    """μ(p): ``base_width / in_width(p)`` for hidden weights under μP, 1 otherwise (and always 1 in SP)."""
    if mup and role == "hidden" and p.ndim >= 2:
        return base_width / in_width(p)
    return 1.0


def infer_roles(params: Iterable[torch.Tensor]) -> list[ParamRole]:
    """Roles for parameters given without a ``role`` tag, by :mod:`optforge.engine.routing`'s rule for
    an unmarked model: tensors under 2-D are ``vector``; of the others, in order, the first reads the data
    (``input``), the last writes the output (``readout``), the rest are ``hidden``. A lone matrix is
    ``input``. Pass role-tagged groups (``learned_opt.param_groups(model)``) when this guess is wrong,
    e.g. for embeddings or models that register their readout first.
    """
    params = list(params)
    matrices = [i for i, p in enumerate(params) if p.ndim >= 2]
    roles: list[ParamRole] = ["vector" if p.ndim < 2 else "hidden" for p in params]
    if matrices:
        roles[matrices[0]] = "input"
        if len(matrices) > 1:
            roles[matrices[-1]] = "readout"
    return roles


def tag_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups with a valid ``role`` each: untagged groups are split by :func:`infer_roles` (over all
    untagged parameters together, in order), keeping each group's own options."""
    for group in groups:
        role = group.get("role")
        if role is not None and role not in ROLES:
            raise ValueError(f"parameter group role must be one of {ROLES}, got {role!r}")
    untagged = [p for g in groups if g.get("role") is None for p in g["params"]]
    inferred = dict(zip(map(id, untagged), infer_roles(untagged), strict=True))
    tagged: list[dict[str, Any]] = []
    for group in groups:
        if group.get("role") is not None:
            tagged.append(group)
            continue
        for role in ROLES:
            members = [p for p in group["params"] if inferred[id(p)] == role]
            if members:
                tagged.append({**group, "params": members, "role": role})
    return tagged
