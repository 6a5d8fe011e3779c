"""Response schemas of the status page's data routes (``/web-api``): what the page's JavaScript reads.

They are shaped for drawing (curves as ``[step, value]`` pairs, axes with their scale) rather than for
the SDK, which keeps using ``/api/v1``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from optforge.spec import CheckpointRecord, StudyStatus
from optforge.spec._api import PublicModel, TrialPublic


class CurveTrial(TrialPublic):
    """A trial with its learning curve of the study's metric."""

    points: list[tuple[int, float]] = Field(description="[step, metric] at each evaluation that measured it")


class StudyCurves(PublicModel):
    """Every trial of a study with its curve, and where the live stream should resume to add to them."""

    study_id: int
    metric: str
    mode: Literal["min", "max"]
    cursor: int = Field(description="the last event id before these trials were read: stream with ?after=cursor")
    trials: list[CurveTrial]


class ImportanceItem(PublicModel):
    name: str
    importance: float = Field(description="fANOVA share of the objective's variance (all of a scope's sum to 1)")


class Dimension(PublicModel):
    """One axis of the parallel-coordinates plot: a categorical or numeric hyperparameter."""

    name: str
    kind: Literal["category", "value"]
    log: bool = False
    low: float | None = None
    high: float | None = None
    categories: list[str] | None = None


class ParallelRow(PublicModel):
    trial_id: int
    number: int
    values: list[float | int | str | bool | None] = Field(description="one value per dimension, in order")
    objective: float


class AnalysisScope(PublicModel):
    """Importance and parallel coordinates over one group of trials: all of them, or one family's."""

    key: str = Field(description="'all' or 'family:<name>'")
    label: str
    n_trials: int
    importance: list[ImportanceItem]
    note: str | None = Field(None, description="why the importance is empty, when it is")
    dimensions: list[Dimension]
    rows: list[ParallelRow]


class TransferPoint(PublicModel):
    """A configuration run at the proxy and the target width, with its rank at each (1 = best)."""

    family: str
    schedule: str
    proxy_trial_id: int
    proxy_rank: int
    target_rank: int
    proxy_value: float
    target_value: float
    proxy_width: int | None = None
    target_width: int | None = None


class StudyAnalysis(PublicModel):
    study_id: int
    objective: str = Field(description="what the values are: the task metric, or steps/seconds to the target")
    mode: Literal["min", "max"]
    scopes: list[AnalysisScope]
    transfer: list[TransferPoint]


class BestView(PublicModel):
    """The configuration to take away: the study's final best, or the best trial so far while it runs."""

    source: Literal["final", "so_far"]
    trial_id: int | None = None
    family: str
    schedule: str
    metric: str
    value: float
    std: float | None = None
    n: int = 1
    yaml: str = Field(description="the TrialConfig as YAML (search.initial_configs, `optforge trial`)")
    snippet: str = Field(description="ready-to-paste PyTorch code building the optimizer and scheduler")


class MetaRunView(PublicModel):
    """A learned-optimizer meta-training run with its meta-loss curve and checkpoints."""

    id: int
    name: str
    status: StudyStatus
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    spec: dict = Field(default_factory=dict)
    curve: list[tuple[int, float]] = Field(description="[step, meta-loss] (non-finite losses left out)")
    checkpoints: list[CheckpointRecord]


class LearnedView(PublicModel):
    runs: list[MetaRunView]
    checkpoints: list[CheckpointRecord] = Field(description="checkpoints that belong to no stored run")
