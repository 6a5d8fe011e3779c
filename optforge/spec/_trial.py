"""One configuration to train with, and what came out of training it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from optforge.catalog import FAMILIES, Value, get_family, get_schedule
from optforge.catalog._hparam import check_all
from optforge.spec._base import StrictModel


class TrialConfig(StrictModel):
    """An optimizer family with its hyperparameters, a schedule with its parameters, and the μP flag.

    Only overrides need to be given: ``resolved_hparams()`` fills in the family's defaults. Every name
    and value is checked against the catalog here, before any training starts.
    """

    family: str = "adamw"
    hparams: dict[str, Value] = Field(default_factory=dict)
    schedule: str = "cosine"
    schedule_params: dict[str, Value] = Field(default_factory=dict)
    mup: bool = Field(False, description="Maximal Update Parametrization (init, multipliers, per-group LR)")

    @model_validator(mode="before")
    @classmethod
    def _default_schedule_for_family(cls, data: Any) -> Any:
        # Schedule-free families (and ones with a built-in schedule) default to 'constant' rather than
        # failing on the generic default 'cosine'; an explicit other schedule is still an error.
        if isinstance(data, dict) and "schedule" not in data and isinstance(data.get("family"), str):
            family = FAMILIES.get(data["family"])
            if family is not None and family.needs_constant_schedule:
                data = {**data, "schedule": "constant"}
        return data

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        get_family(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        get_schedule(value)
        return value

    @field_validator("hparams")
    @classmethod
    def _valid_hparams(cls, value: dict[str, Value], info: ValidationInfo) -> dict[str, Value]:
        family = info.data.get("family")
        if family is None:  # the family itself failed validation and is reported on its own
            return value
        family_entry = get_family(family)
        return check_all(value, family_entry.hparam)

    @field_validator("schedule_params")
    @classmethod
    def _valid_schedule_params(cls, value: dict[str, Value], info: ValidationInfo) -> dict[str, Value]:
        schedule = info.data.get("schedule")
        if schedule is None:
            return value
        entry = get_schedule(schedule)
        return check_all(value, entry.param)

    @model_validator(mode="after")
    def _constant_schedule_when_needed(self) -> TrialConfig:
        family = get_family(self.family)
        if family.needs_constant_schedule and self.schedule != "constant":
            why = "is schedule-free" if family.schedule_free else "runs its own warmup and decay"
            raise ValueError(
                f"family {self.family!r} {why}, so it runs with schedule 'constant' (warmup still comes from "
                f"warmup_fraction); got schedule {self.schedule!r}"
            )
        return self

    def resolved_hparams(self) -> dict[str, Value]:
        """The family's defaults overlaid with this config's hyperparameters."""
        return get_family(self.family).resolve(self.hparams)

    def resolved_schedule_params(self) -> dict[str, Value]:
        """The schedule's defaults overlaid with this config's schedule parameters."""
        return get_schedule(self.schedule).resolve(self.schedule_params)


class TrialStatus(StrEnum):
    """The life of a trial. ``diverged`` is a result, not an error: it ranks last and never stops a study."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (TrialStatus.QUEUED, TrialStatus.RUNNING)


class MetricPoint(StrictModel):
    """The metrics at one step. Validation fields are ``None`` at steps without an evaluation."""

    step: int = Field(ge=0)
    train_loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float
    examples_per_s: float = Field(ge=0)
    wall_time: float = Field(ge=0, description="seconds since the trial started training")

    def metric(self, name: str) -> float | None:
        """The value of metric ``name`` (``val_loss``, ``val_accuracy`` or ``train_loss``) at this point."""
        return getattr(self, name)


class TrialResult(StrictModel):
    """How one trial ended: its status, its curve, and the metric that ranks it."""

    status: TrialStatus
    steps: int = Field(0, ge=0, description="optimizer steps actually taken")
    metric: str = "val_loss"
    final: float | None = Field(None, description="the metric at the last evaluation")
    best: float | None = Field(None, description="the best metric over all evaluations")
    step_reached_target: int | None = None
    seconds_reached_target: float | None = None
    curve: list[MetricPoint] = Field(default_factory=list)
    wall_time: float = 0.0
    device: str = "cpu"
    error: str | None = Field(None, description="why it diverged or failed (a traceback for failures)")
    info: dict[str, Any] = Field(default_factory=dict, description="parameter count, node id, code version, ...")
