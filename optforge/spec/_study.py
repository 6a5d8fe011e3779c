"""A study: a task, the search over how to train it, and the events it emits while it runs."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from optforge.catalog import FAMILIES, SCHEDULES, Value, get_family, get_schedule
from optforge.spec._base import StrictModel
from optforge.spec._task import TaskSpec
from optforge.spec._trial import TrialConfig


class TrialResources(StrictModel):
    """What each trial asks Ray for. Fractional GPUs (e.g. 0.25) pack several trials on one GPU."""

    cpu: float = Field(1.0, gt=0, le=1024)
    gpu: float = Field(0.0, ge=0, le=64)
    custom: dict[str, float] = Field(
        default_factory=dict, description="Ray custom resources, e.g. {'gpu_type_h100': 1}"
    )


class ProxySpec(StrictModel):
    """μTransfer: tune at a narrow proxy width, then re-run the top-k configurations at the target width."""

    width: int | None = Field(None, ge=1, le=65536)
    width_ratio: float | None = Field(None, gt=0, le=1, description="proxy width = ratio x target width")
    top_k: int = Field(3, ge=1, le=100)
    seeds: int = Field(2, ge=1, le=20)

    @model_validator(mode="after")
    def _one_width(self) -> ProxySpec:
        if (self.width is None) == (self.width_ratio is None):
            raise ValueError("give exactly one of search.proxy.width and search.proxy.width_ratio")
        return self


def _check_space_key(key: str) -> str:
    """Keys of ``fixed``/``ranges``: ``lr`` (every family that has it), ``adamw.lr`` (one family) or
    ``cosine.warmup_fraction`` (one schedule)."""
    scope, _, name = key.rpartition(".")
    if not scope:
        known = {hp.name for f in FAMILIES.values() for hp in f.hparams} | {
            p.name for s in SCHEDULES.values() for p in s.params
        }
        if name not in known:
            raise ValueError(f"{key!r} is no hyperparameter of any family or schedule")
    elif scope in FAMILIES:
        get_family(scope).hparam(name)
    elif scope in SCHEDULES:
        get_schedule(scope).param(name)
    else:
        raise ValueError(f"{key!r}: {scope!r} is neither an optimizer family nor a schedule")
    return key


class SearchSpec(StrictModel):
    """How to search: which families and schedules, how many trials, which sampler and pruner."""

    n_trials: int = Field(16, ge=1, le=100_000)
    families: list[str] | None = Field(None, description="default: catalog.DEFAULT_SEARCH_FAMILIES")
    schedules: list[str] | None = Field(None, description="default: cosine, linear and wsd")
    fixed: dict[str, Value] = Field(default_factory=dict, description="'lr', 'adamw.lr' or 'wsd.decay_fraction'")
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict, description="override search ranges")
    sampler: Literal["tpe", "gp", "cmaes", "qmc", "random"] = "tpe"
    early_stopping: Literal["asha", "wsd_branch", "none"] = "asha"
    reduction_factor: int = Field(3, ge=2, le=10)
    grace_fraction: float = Field(0.25, gt=0, le=1, description="first ASHA rung, as a fraction of the budget")
    objective: Literal["final", "time_to_target"] = "final"
    # Steps by default: they do not depend on the machine or on how busy it is, so rankings repeat.
    time_to_target_unit: Literal["steps", "seconds"] = Field(
        "steps", description="time_to_target: rank by the steps or the wall-clock seconds taken to reach task.target"
    )
    top_k: int = Field(0, ge=0, le=100, description="re-run the top-k configurations with extra seeds")
    extra_seeds: int = Field(2, ge=1, le=20)
    max_concurrent: int | None = Field(None, ge=1, le=10_000)
    max_retries: int = Field(1, ge=0, le=10, description="a trial that raises is retried this many times")
    resources: TrialResources = Field(default_factory=TrialResources)
    warm_start: bool = Field(True, description="evaluate stored configurations of similar tasks first")
    initial_configs: list[TrialConfig] = Field(default_factory=list, description="evaluated first, in order")
    mup: bool = Field(False, description="train every trial under μP")
    proxy: ProxySpec | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one family, or leave search.families out for the default set")
            for name in value:
                get_family(name)
        return value

    @field_validator("schedules")
    @classmethod
    def _known_schedules(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one schedule, or leave search.schedules out for the default set")
            for name in value:
                get_schedule(name)
        return value

    @field_validator("fixed")
    @classmethod
    def _known_fixed(cls, value: dict[str, Value]) -> dict[str, Value]:
        for key in value:
            _check_space_key(key)
        return value

    @field_validator("ranges")
    @classmethod
    def _known_ranges(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for key, (low, high) in value.items():
            _check_space_key(key)
            if not low < high:
                raise ValueError(f"range for {key!r} must have low < high, got [{low}, {high}]")
        return value


class StudySpec(StrictModel):
    """Everything a user submits: a name, the task to train, and how to search."""

    name: str = Field("study", min_length=1, max_length=200, pattern=r"^[\w .:/+@-]+$")
    task: TaskSpec = Field(default_factory=TaskSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)


class StudyEventKind(StrEnum):
    STARTED = "started"
    TRIAL_STARTED = "trial_started"
    TRIAL_RESULT = "trial_result"
    TRIAL_FINISHED = "trial_finished"
    BEST_CHANGED = "best_changed"
    PHASE = "phase"
    FINISHED = "finished"


class StudyEvent(StrictModel):
    """One thing that happened in a study, as the search reports it and the live stream sends it."""

    kind: StudyEventKind
    trial_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    time: float = Field(default_factory=time.time)
