"""The description of one learning-rate schedule (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from optforge.catalog._hparam import HParam, Value, check_all


class Schedule(BaseModel):
    """One schedule: its parameters (every schedule has ``warmup_fraction``) and where it comes from.

    Schedules are multiplicative factors on each parameter group's own LR, never absolute values, so
    they compose with μP's per-group LR scaling.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    params: tuple[HParam, ...]
    implementation: str = Field(description="the library class or formula used")
    doc: str
    reference: str = ""

    def param(self, name: str) -> HParam:
        """The parameter called ``name``; ValueError naming the ones this schedule takes otherwise."""
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(
            f"schedule {self.name!r} takes no parameter {name!r}; it takes: " + ", ".join(p.name for p in self.params)
        )

    def resolve(self, params: Mapping[str, object]) -> dict[str, Value]:
        """Defaults overlaid with ``params``, each checked against its valid interval."""
        resolved = {p.name: p.default for p in self.params}
        resolved.update(check_all(params, self.param))
        return resolved
