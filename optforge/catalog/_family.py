"""The description of one optimizer family (torch-free, so the SDK and the service can read it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from optforge.catalog._hparam import HParam, Value, check_all

# How μP scales a family's per-layer learning rate depends on how its update scales with fan-in
# ("Tensor Programs IVb/V"; see docs/mup.md): entry-wise normalized updates (Adam, Lion, sign) need
# 1/fan_in on hidden weights, SGD-like updates need none there, spectral updates (Muon, Shampoo,
# SOAP) are normalized per matrix and need sqrt(fan_out/fan_in).
MupRule = Literal["adaptive", "sgd", "spectral", "learned"]


class Family(BaseModel):
    """One registry entry: everything optforge knows about an optimizer family.

    ``constructor`` is a lazy ``"module:attribute"`` reference so this catalog never imports torch;
    the engine resolves it. Hyperparameters named ``beta1``/``beta2``/``beta3`` are packed into the
    constructor's ``betas`` tuple when ``pack_betas`` is set; all others are passed by name, so every
    hyperparameter of a class constructor is named exactly like the constructor's keyword argument.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    constructor: str = Field(description="'module:attribute' of the optimizer class or builder function")
    implementation: str | None = Field(
        None, description="for builder functions: the library classes they assemble (shown as the library)"
    )
    hparams: tuple[HParam, ...]
    fixed: Mapping[str, Value] = Field(default_factory=dict, description="constructor kwargs always passed")
    pack_betas: bool = True
    mup_rule: MupRule = "adaptive"
    routing: Literal["all", "hidden_matrices"] = Field(
        "all", description="hidden_matrices: only 2-D hidden weights; the rest goes to an auxiliary AdamW"
    )
    state_per_param: str = Field(description="optimizer state, in multiples of the parameter count")
    reference: str = Field(description="one-line citation of the paper or reference implementation")
    needs_create_graph: bool = Field(False, description="needs backward(create_graph=True) (Hessian-vector products)")
    needs_closure: bool = Field(False, description="step() must be given a closure that re-evaluates the loss")
    schedule_free: bool = Field(False, description="needs optimizer.train()/eval() around evaluation")
    own_schedule: bool = Field(
        False, description="runs its own warmup/decay over the budget, so optforge's schedule is pinned to constant"
    )
    total_steps_arg: str | None = Field(
        None,
        description="constructor kwarg that receives the trial's step budget (Ranger21's num_iterations, "
        "AdEMAMix's t_alpha_beta3); build_optimizer then needs total_steps",
    )
    cannot_descend: str | None = Field(
        None, description="why this family structurally cannot lower the loss in 20 tiny steps (contract tests)"
    )
    notes: str = ""

    @property
    def needs_constant_schedule(self) -> bool:
        """Schedule-free families and families with a built-in schedule run under ``constant`` (plus warmup)."""
        return self.schedule_free or self.own_schedule

    @property
    def library(self) -> str:
        """Where the implementation comes from, e.g. ``torch.optim.AdamW``."""
        if self.implementation:
            return self.implementation
        module, _, attr = self.constructor.partition(":")
        return f"{module}.{attr}"

    def hparam(self, name: str) -> HParam:
        """The hyperparameter called ``name``; ValueError naming the ones this family takes otherwise."""
        for hp in self.hparams:
            if hp.name == name:
                return hp
        raise ValueError(
            f"optimizer family {self.name!r} takes no hyperparameter {name!r}; it takes: "
            + ", ".join(hp.name for hp in self.hparams)
        )

    def resolve(self, hparams: Mapping[str, object]) -> dict[str, Value]:
        """Defaults overlaid with ``hparams``, each checked against its valid interval."""
        resolved = {hp.name: hp.default for hp in self.hparams}
        resolved.update(check_all(hparams, self.hparam))
        return resolved
