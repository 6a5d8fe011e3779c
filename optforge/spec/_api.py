"""The service's public API schemas, shared by the service and the SDK (pydantic only).

Naming follows ``XCreate`` (a request body), ``XPublic`` (one thing in a response) and
``XsPublic(data, count)`` (a page of things plus the total count matching the query). Stored records
(:mod:`optforge.spec._records`) carry internals such as leases and fingerprints; these schemas are what
a client may rely on.

Every error response has one shape, ``ErrorPublic``: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``
with ``loc`` naming the field (``["body", "search", "n_trials"]``) or the part of the request at fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from optforge.catalog import Family, Schedule
from optforge.spec._records import StudyStatus
from optforge.spec._study import StudySpec
from optforge.spec._task import TaskSpec
from optforge.spec._trial import MetricPoint, TrialConfig, TrialStatus


class PublicModel(BaseModel):
    """Base of every response schema. Unknown fields are ignored so an older SDK reads a newer server."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class ErrorDetail(PublicModel):
    """One problem: where (``loc``), what (``msg``) and a machine-readable ``type``."""

    loc: list[str | int] = Field(description="path to the offending field, e.g. ['body', 'search', 'n_trials']")
    msg: str
    type: str = "value_error"


class ErrorPublic(PublicModel):
    """The body of every 4xx/5xx response."""

    detail: list[ErrorDetail]


class StudyCreate(StudySpec):
    """The body of ``POST /studies``: a StudySpec."""


class StudyProgress(PublicModel):
    trials_total: int = Field(description="trials the search plans (search.n_trials)")
    trials_finished: int = Field(description="trials that ended: completed, pruned, diverged or failed")
    trials_running: int = 0
    fraction: float = Field(ge=0, le=1, description="trials_finished / trials_total, capped at 1")


class BestSoFar(PublicModel):
    """The best finished trial of a study so far."""

    trial_id: int
    family: str
    schedule: str
    metric: str
    value: float


class StudyPublic(PublicModel):
    """A study as the API shows it: what was asked, where it is, and the best result so far."""

    id: int
    name: str
    owner: str | None = Field(None, description="the user who submitted it (None in open mode)")
    status: StudyStatus
    spec: StudySpec
    progress: StudyProgress
    best: BestSoFar | None = None
    error: str | None = None
    cancel_requested: bool = False
    resumed: int = Field(0, description="how many times the study was resumed after its worker stopped")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_s: float | None = Field(None, description="seconds from start to finish (or to now while running)")


class StudiesPublic(PublicModel):
    data: list[StudyPublic]
    count: int = Field(description="studies matching the filter, over all pages")


class TrialPublic(PublicModel):
    """One trial of a study: its configuration, status and summary (the curve is a separate call)."""

    id: int
    study_id: int
    number: int
    key: str
    config: TrialConfig
    status: TrialStatus
    phase: str
    seed: int | None = None
    width: int | None = None
    attempt: int = 1
    metric: str | None = None
    value: float | None = None
    final: float | None = None
    best: float | None = None
    steps: int = 0
    step_reached_target: int | None = None
    wall_time: float | None = None
    device: str | None = None
    node_id: str | None = Field(None, description="the Ray node the trial ran on")
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TrialsPublic(PublicModel):
    data: list[TrialPublic]
    count: int


class MetricPointsPublic(PublicModel):
    """The learning curve of one trial, in step order."""

    trial_id: int
    data: list[MetricPoint]
    count: int


class SeedStats(PublicModel):
    """How the best configuration did over seeds: the mean, its spread and every run."""

    n: int = Field(ge=1)
    mean: float
    std: float | None = Field(None, description="sample standard deviation; None with a single seed")
    seeds: list[int] = Field(default_factory=list)


class BestPublic(PublicModel):
    """A study's best configuration, ready to use."""

    study_id: int
    rank: int = 0
    metric: str
    mode: Literal["min", "max"]
    config: TrialConfig
    task: TaskSpec
    stats: SeedStats
    proxy_width: int | None = None
    target_width: int | None = None
    snippet: str = Field(description="ready-to-paste PyTorch code building this optimizer and scheduler")


class BestsPublic(PublicModel):
    data: list[BestPublic]
    count: int


class RecommendationPublic(PublicModel):
    """A stored configuration for a task like the one asked about. ``distance`` 0 is an exact match."""

    study_id: int
    distance: float
    exact: bool
    metric: str
    mode: Literal["min", "max"]
    config: TrialConfig
    task: TaskSpec
    stats: SeedStats


class RecommendationsPublic(PublicModel):
    data: list[RecommendationPublic]
    count: int


class RecommendCreate(TaskSpec):
    """The body of ``POST /configs/recommend``: a TaskSpec."""


class FamiliesPublic(PublicModel):
    data: list[Family]
    count: int


class SchedulesPublic(PublicModel):
    data: list[Schedule]
    count: int


class HealthPublic(PublicModel):
    """``ok`` when every check passed; ``checks`` says what each one found."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
    version: str = ""
    auth: Literal["token", "open"] | None = None
