"""What the storage layer hands back: stored studies, trials, events, best configurations, users and tokens.

These are read models. The service and the SDK use them without importing SQLAlchemy; ``optforge.storage``
builds them from its tables. They are frozen: a record is a snapshot of a row at read time, and changing
one changes nothing in the database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from optforge.spec._study import StudyEvent, StudySpec
from optforge.spec._task import TaskSpec
from optforge.spec._trial import MetricPoint, TrialConfig, TrialStatus


class Record(BaseModel):
    """Base of every stored record: immutable, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class StudyStatus(StrEnum):
    """The life of a study (and of a meta-training run).

    ``queued`` → ``running`` → ``completed`` | ``failed`` | ``cancelled``; a ``queued`` study can be
    cancelled before it starts, and a ``running`` study whose worker vanished goes back to ``queued``.
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (StudyStatus.COMPLETED, StudyStatus.FAILED, StudyStatus.CANCELLED)


class UserRecord(Record):
    id: int
    name: str
    is_admin: bool
    created_at: datetime


class TokenRecord(Record):
    """An API token as it can be listed: never the secret, only its short visible ``prefix``."""

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="the first characters of the token, to tell tokens apart in a list")
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class IssuedToken(Record):
    """A freshly issued token. ``token`` is the secret: it is shown once and never stored."""

    token: str
    record: TokenRecord


class StudyRecord(Record):
    """A stored study with its status, progress counters and the lease of the worker that runs it."""

    id: int
    name: str
    owner_id: int | None
    spec: StudySpec
    status: StudyStatus
    fingerprint: str = Field(description="task fingerprint: equal for tasks that train the same way")
    error: str | None = None
    trials_total: int = Field(description="trials the search plans (search.n_trials)")
    trials_finished: int = Field(description="trials in a finished state (completed, pruned, diverged, failed...)")
    cancel_requested: bool = False
    claimed_by: str | None = Field(None, description="the worker that holds the study's lease")
    claimed_at: datetime | None = None
    heartbeat_at: datetime | None = None
    claim_count: int = Field(0, description="how many times a worker claimed it; >1 means it was resumed")
    optuna_study_name: str | None = Field(None, description="the study's name in Optuna's tables (optuna-dashboard)")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TrialRecord(Record):
    """A stored trial: its configuration, status and summary. ``curve`` is filled only when asked for."""

    id: int
    study_id: int
    key: str = Field(description="the caller's id for the trial, unique per study (e.g. Ray Tune's trial id)")
    number: int = Field(description="0, 1, 2... in the order trials were first reported within the study")
    config: TrialConfig
    status: TrialStatus
    phase: str = Field(description="'search', 'reseed', 'transfer'...: which part of the study ran it")
    seed: int | None = None
    width: int | None = Field(None, description="model width the trial trained at (proxy or target)")
    resources: dict[str, Any] = Field(default_factory=dict)
    node_id: str | None = None
    attempt: int = 1
    metric: str | None = None
    value: float | None = Field(None, description="the objective the search ranked the trial by")
    final: float | None = None
    best: float | None = None
    steps: int = 0
    step_reached_target: int | None = None
    seconds_reached_target: float | None = None
    wall_time: float | None = None
    device: str | None = None
    error: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)
    optuna_trial_id: int | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    curve: list[MetricPoint] = Field(default_factory=list)


class StudyDetail(StudyRecord):
    """A study with all its trials (and their curves when asked for), read in a fixed number of queries."""

    trials: list[TrialRecord] = Field(default_factory=list)


class StoredStudyEvent(StudyEvent):
    """A study event as stored: ``id`` increases by one per event within its study (SSE ``Last-Event-ID``)."""

    id: int
    study_id: int


class BestConfigCreate(Record):
    """One of a study's best configurations, as the search hands it to storage (rank = position in the list)."""

    config: TrialConfig
    metric: str
    mode: Literal["min", "max"]
    mean: float
    std: float | None = None
    n: int = Field(1, ge=1, description="runs (seeds) the mean is over")
    seeds: list[int] = Field(default_factory=list)
    proxy_width: int | None = Field(None, description="width the configuration was tuned at (μTransfer)")
    target_width: int | None = Field(None, description="width it was confirmed at")


class BestConfigRecord(BestConfigCreate):
    id: int
    study_id: int
    rank: int = Field(description="0 is the study's best")
    fingerprint: str
    task: TaskSpec
    created_at: datetime


class Recommendation(Record):
    """A stored configuration recommended for a task. ``distance`` is 0 for an exact fingerprint match."""

    best: BestConfigRecord
    distance: float
    exact: bool


class MetaLossPoint(Record):
    """One point of a meta-training curve."""

    step: int = Field(ge=0)
    meta_loss: float
    wall_time: float = Field(0.0, ge=0)
    metrics: dict[str, float] = Field(default_factory=dict)


class MetaRunRecord(Record):
    """A learned-optimizer meta-training run. ``curve`` is filled only when asked for."""

    id: int
    name: str
    spec: dict[str, Any]
    status: StudyStatus
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    curve: list[MetaLossPoint] = Field(default_factory=list)


class CheckpointRecord(Record):
    """A learned-optimizer checkpoint without its weights (``storage.repo.learned.load_weights`` reads them)."""

    id: int
    name: str
    run_id: int | None
    step: int
    spec: dict[str, Any]
    metrics: dict[str, Any]
    weights_format: str
    weights_sha256: str
    size_bytes: int
    created_at: datetime
