"""The tables. Private to ``optforge.storage``: repository functions turn rows into ``optforge.spec`` records.

Every table name starts with ``optforge_`` because Optuna's own tables (``studies``, ``trials``...) live in
the same database (see ``optuna_mirror``). A change here needs a migration: ``python -m
optforge.storage.migrate revision "what changed"`` writes one from the difference.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from optforge.spec import StudyStatus, TrialStatus
from optforge.storage._types import JSONDocument, Real, UTCDateTime, utcnow

# Constraint names that are the same on every backend, so migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _status(enum: type[StrEnum]) -> Enum:
    # VARCHAR, not a native PostgreSQL ENUM: adding a status later is then a code change, not a migration.
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument(),
        float: Real(),
    }


class UserRow(Base):
    __tablename__ = "optforge_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiTokenRow(Base):
    """A token is stored as the SHA-256 of its secret; ``prefix`` is the visible start, indexed for lookup."""

    __tablename__ = "optforge_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("optforge_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class StudyRow(Base):
    __tablename__ = "optforge_studies"
    __table_args__ = (
        Index("ix_optforge_studies_status_created_at", "status", "created_at"),  # the scheduler's queue scan
        Index("ix_optforge_studies_owner_id_status", "owner_id", "status"),  # per-user limits and listings
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("optforge_users.id", ondelete="SET NULL"))
    spec: Mapped[dict[str, Any]]
    status: Mapped[StudyStatus] = mapped_column(_status(StudyStatus), default=StudyStatus.QUEUED)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    trials_total: Mapped[int] = mapped_column(Integer, default=0)
    trials_finished: Mapped[int] = mapped_column(Integer, default=0)
    # Counters bumped with UPDATE ... RETURNING: the row lock orders concurrent writers of one study.
    last_trial_number: Mapped[int] = mapped_column(Integer, default=-1)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    claim_count: Mapped[int] = mapped_column(Integer, default=0)
    optuna_study_name: Mapped[str | None] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class TrialRow(Base):
    __tablename__ = "optforge_trials"
    __table_args__ = (
        UniqueConstraint("study_id", "key"),  # re-reporting a trial after a restart updates, never duplicates
        UniqueConstraint("study_id", "number"),
        Index("ix_optforge_trials_study_id_status", "study_id", "status"),
        # The best trial so far (``repo.trials.best_trial``, read when a polled study changes): the first
        # entry of this index, not a sort of every completed trial.
        Index("ix_optforge_trials_best", "study_id", "status", "phase", "final", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("optforge_studies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]]
    status: Mapped[TrialStatus] = mapped_column(_status(TrialStatus))
    phase: Mapped[str] = mapped_column(String(32), default="search")
    seed: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    node_id: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    metric: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[float | None]
    final: Mapped[float | None]
    best: Mapped[float | None]
    steps: Mapped[int] = mapped_column(BigInteger, default=0)
    step_reached_target: Mapped[int | None] = mapped_column(BigInteger)
    seconds_reached_target: Mapped[float | None]
    wall_time: Mapped[float | None]
    device: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    optuna_trial_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class MetricPointRow(Base):
    """One row per (trial, step): the primary key is the index every curve read walks, in step order."""

    __tablename__ = "optforge_metric_points"

    trial_id: Mapped[int] = mapped_column(ForeignKey("optforge_trials.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    train_loss: Mapped[float | None]  # NULL means NaN (a diverged step), see _types.Real
    val_loss: Mapped[float | None]
    val_accuracy: Mapped[float | None]
    lr: Mapped[float | None]
    examples_per_s: Mapped[float | None]
    wall_time: Mapped[float | None]


class StudyEventRow(Base):
    """The append-only event log of a study; ``seq`` is 1, 2, 3... within the study."""

    __tablename__ = "optforge_study_events"

    study_id: Mapped[int] = mapped_column(ForeignKey("optforge_studies.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    trial_key: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    time: Mapped[float]


class BestConfigRow(Base):
    """A study's ranked best configurations, keyed by task fingerprint for ``recommend``."""

    __tablename__ = "optforge_best_configs"
    __table_args__ = (UniqueConstraint("study_id", "rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("optforge_studies.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    features: Mapped[dict[str, Any]]
    task: Mapped[dict[str, Any]]
    family: Mapped[str] = mapped_column(String(64), index=True)
    config: Mapped[dict[str, Any]]
    metric: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(3))
    mean: Mapped[float | None]
    std: Mapped[float | None]
    n: Mapped[int] = mapped_column(Integer, default=1)
    seeds: Mapped[list[int]] = mapped_column(JSONDocument, default=list)
    proxy_width: Mapped[int | None] = mapped_column(Integer)
    target_width: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetaRunRow(Base):
    """A learned-optimizer meta-training run."""

    __tablename__ = "optforge_meta_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    spec: Mapped[dict[str, Any]]
    status: Mapped[StudyStatus] = mapped_column(_status(StudyStatus), default=StudyStatus.RUNNING)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    # A run the service runs as a job has an owner and a lease, as a study does (repo.learned.claim_next_meta_run);
    # a run the CLI records has neither, and no service ever claims it.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("optforge_users.id", ondelete="SET NULL"))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    claim_count: Mapped[int] = mapped_column(Integer, default=0)


class MetaLossPointRow(Base):
    __tablename__ = "optforge_meta_loss_points"

    run_id: Mapped[int] = mapped_column(ForeignKey("optforge_meta_runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    meta_loss: Mapped[float | None]
    wall_time: Mapped[float | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CheckpointRow(Base):
    """Learned-optimizer weights. The blob is deferred: listing checkpoints never reads it."""

    __tablename__ = "optforge_learned_checkpoints"
    __table_args__ = (Index("ix_optforge_learned_checkpoints_name_step", "name", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("optforge_meta_runs.id", ondelete="SET NULL"), index=True)
    step: Mapped[int] = mapped_column(BigInteger)
    weights: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    weights_format: Mapped[str] = mapped_column(String(32))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    spec: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
