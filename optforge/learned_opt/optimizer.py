"""``MuLO`` (μP-scaled learned optimizer) and ``StandardLO`` (the same network in standard parametrization).

Each step, for every parameter group:

1. the accumulators of each tensor are updated with its gradient and its 28 state features are written,
   normalized, into one ``(28, N)`` matrix for all N coordinates of the group (:mod:`.features`);
2. the update network runs **once** over all N columns (:mod:`.network`), giving a direction d and a
   log-magnitude s per coordinate;
3. each tensor moves by ``p ← p − lr · step_mult · (μ(p) · d · exp(exp_mult · s) + weight_decay · p)``,
   where ``step_mult`` is the meta-trained base step (0.01 μLO, 0.001 SP) times the user's multiplier and
   μ(p) is :func:`.scaling.update_multiplier` (1 everywhere in SP). Groups built by ``build_optimizer`` with
   μP carry μ(p) in their LR already (their ``lr_scale``, the engine's ``learned`` rule): for those μ(p) = 1
   here, so it is never applied twice.

The only Python loops are over tensors (to build features and to apply updates), never over elements.
The model being trained must itself be in μP (``build_model(..., mup=True)``) for μLO's width transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch

from optforge.learned_opt.features import N_STATE_FEATURES, init_state, time_features, write_features
from optforge.learned_opt.network import UpdateNetwork, apply_network, mlp_block
from optforge.learned_opt.scaling import tag_groups, update_multiplier
from optforge.learned_opt.weights import (
    DEFAULT_BASE_WIDTH,
    DEFAULT_STEP_MULT,
    EXP_MULT,
    LearnedWeights,
    Parametrization,
    shipped_weights,
)

WeightsArg = str | Path | LearnedWeights | UpdateNetwork | None


def _resolve_weights(weights: WeightsArg, parametrization: Parametrization) -> LearnedWeights | UpdateNetwork:
    if weights is None:
        return shipped_weights(parametrization)
    if isinstance(weights, str) and weights == "random":
        return LearnedWeights.from_network(UpdateNetwork(), parametrization, name="random")
    if isinstance(weights, str | Path):
        return LearnedWeights.load(weights)
    return weights


def _as_groups(params: Iterable[Any]) -> list[dict[str, Any]]:
    items = list(params)
    if not items:
        raise ValueError("optimizer got an empty parameter list: pass model.parameters() of a model with parameters")
    groups = items if isinstance(items[0], dict) else [{"params": items}]
    out = []
    for group in groups:
        ps = group["params"]
        out.append({**group, "params": [ps] if isinstance(ps, torch.Tensor) else list(ps)})
    return out


class MuLO(torch.optim.Optimizer):
    """The μP-scaled learned optimizer (Thérien et al. 2024), with optforge's meta-trained weights.

    ``MuLO(model.parameters())`` works without tuning: ``lr`` stays 1 and ``step_mult`` (a multiplier
    of the meta-trained step, 1 by default) is the one knob worth searching. Parameter groups tagged
    with ``"role"`` (as ``optforge.engine.build_optimizer`` makes them) say which tensors are hidden
    weights; untagged parameters are routed by :func:`.scaling.infer_roles`.

    Args:
        params: parameters or parameter groups.
        lr: multiplies every update (schedulers act on it); keep 1 unless you schedule it.
        step_mult: multiplier of the meta-trained base step.
        weight_decay: decoupled decay, applied as ``lr · step_mult · weight_decay · p`` per step.
        weights: a weights file, a :class:`.weights.LearnedWeights`, an :class:`.network.UpdateNetwork`
            (meta-training), ``"random"`` (an untrained network), or None for the shipped weights.
        base_width: μP base width for μ(p); defaults to the one stored with the weights.
        compile: run the update network through ``torch.compile`` (dynamic shapes).
    """

    parametrization: ClassVar[Parametrization] = "mup"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        *,
        step_mult: float = 1.0,
        weight_decay: float = 0.0,
        weights: WeightsArg = None,
        base_width: int | None = None,
        compile: bool = False,
    ) -> None:
        if not lr >= 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not step_mult > 0:
            raise ValueError(f"step_mult must be > 0, got {step_mult}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        groups = tag_groups(_as_groups(params))
        super().__init__(groups, {"lr": lr, "step_mult": step_mult, "weight_decay": weight_decay})
        resolved = _resolve_weights(weights, self.parametrization)
        if isinstance(resolved, UpdateNetwork):
            self.network = resolved.requires_grad_(False)
            self.base_step, self.exp_mult = DEFAULT_STEP_MULT[self.parametrization], EXP_MULT
            self.base_width = base_width or DEFAULT_BASE_WIDTH
            self.weights_name = "in-memory"
        else:
            if resolved.parametrization != self.parametrization:
                raise ValueError(
                    f"{type(self).__name__} is the {self.parametrization!r} learned optimizer but these weights were "
                    f"meta-trained in {resolved.parametrization!r}; use "
                    f"{'MuLO' if resolved.parametrization == 'mup' else 'StandardLO'} for them"
                )
            self.network = resolved.build_network()
            self.base_step, self.exp_mult = resolved.step_mult, resolved.exp_mult
            self.base_width = base_width or resolved.base_width
            self.weights_name = resolved.name
        self._block: Callable[..., torch.Tensor] = torch.compile(mlp_block, dynamic=True) if compile else mlp_block

    @property
    def mup(self) -> bool:
        return self.parametrization == "mup"

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            for p in params:
                if not self.state[p]:
                    self.state[p].update(init_state(p))
            # Tensors that skipped steps (no gradient) have their own clock: one network call per distinct step.
            by_step: dict[float, list[torch.Tensor]] = {}
            for p in params:
                by_step.setdefault(float(self.state[p]["step"]), []).append(p)
            for t, same in by_step.items():
                self._step_tensors(group, same, t)
        return loss

    def _step_tensors(self, group: dict[str, Any], params: list[torch.Tensor], t: float) -> None:
        sizes = [p.numel() for p in params]
        device = params[0].device
        features = torch.empty(N_STATE_FEATURES, sum(sizes), dtype=torch.float32, device=device)
        offset = 0
        for p, n in zip(params, sizes, strict=True):
            state = self.state[p]
            write_features(features[:, offset : offset + n], p, p.grad, state)
            state["step"] += 1
            offset += n

        network = self.network
        if network.layers[0].weight.device != device:
            network = self.network = network.to(device)
        bias1 = network.time_bias(time_features(t, device=device))
        out = apply_network(features, bias1, *network.matrices(), block=self._block)
        direction = out[1].mul_(self.exp_mult).exp_().mul_(out[0])  # d · exp(exp_mult · s)

        step = group["lr"] * self.base_step * group["step_mult"]
        decay = step * group["weight_decay"]
        # Groups from build_optimizer carry μP's multiplier in their LR already ("lr_scale", the engine's
        # "learned" rule, which is μ(p)); only groups without it get μ(p) here.
        engine_scaled = "lr_scale" in group
        offset = 0
        for p, n in zip(params, sizes, strict=True):
            mu = 1.0 if engine_scaled else update_multiplier(p, group["role"], mup=self.mup, base_width=self.base_width)
            if decay:
                p.mul_(1.0 - decay)
            p.add_(direction[offset : offset + n].view_as(p).to(p.dtype), alpha=-step * mu)
            offset += n

    def state_dict(self) -> dict[str, Any]:
        """Torch's optimizer state plus the update network and its constants (under ``"learned"``)."""
        state = super().state_dict()
        state["learned"] = {
            "network": {k: v.detach().clone() for k, v in self.network.state_dict().items()},
            "parametrization": self.parametrization,
            "base_step": self.base_step,
            "exp_mult": self.exp_mult,
            "base_width": self.base_width,
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        learned = state_dict.pop("learned", None)
        if learned is not None:
            if learned["parametrization"] != self.parametrization:
                raise ValueError(
                    f"this checkpoint holds a {learned['parametrization']!r} learned optimizer; load it into "
                    f"{'MuLO' if learned['parametrization'] == 'mup' else 'StandardLO'}"
                )
            self.network.load_state_dict(learned["network"])
            self.base_step, self.exp_mult = float(learned["base_step"]), float(learned["exp_mult"])
            self.base_width = int(learned["base_width"])
        super().load_state_dict(state_dict)
        # torch keeps the loaded tensors themselves (no copy when dtype and device match), and casts them to the
        # parameter's dtype. Copy them, in float32: stepping must not write into the caller's state dict (a
        # checkpoint reused for two runs, both halves of an antithetic pair), and accumulators stay float32.
        for state in self.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    state[key] = value.to(dtype=torch.float32, copy=True)


class StandardLO(MuLO):
    """The same learned optimizer meta-trained in standard parametrization: μ(p) = 1 for every tensor and a
    base step of 0.001. It is the comparison point μLO is measured against (``benchmarks/mulo.py``)."""

    parametrization: ClassVar[Parametrization] = "sp"
