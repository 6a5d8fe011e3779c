"""Learned optimizers: meta-training runs with their meta-loss curves, and weight checkpoints.

Weights are stored as the bytes the caller serialized (``weights_format`` says how, e.g. ``safetensors``)
with their SHA-256, which ``load_weights`` checks on the way out. Listings never read the blobs.

A run the service runs as a job is created ``queued`` with an owner, and then lives like a study:
``claim_next_meta_run`` → ``heartbeat_meta_run`` every few seconds → ``finish_meta_run`` (or
``release_meta_run`` when the service stops). A run whose lease is older than ``lease_s`` belongs to a dead
service and the next claim resumes it. A run the CLI records (``create_meta_run``, ``running``, no lease) is
never claimed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from optforge.spec import CheckpointRecord, MetaLossPoint, MetaRunRecord, StudyStatus
from optforge.storage._types import json_safe, utcnow
from optforge.storage.errors import InvalidTransition, LeaseLost, NotFound, StorageError, translating
from optforge.storage.models import CheckpointRow, MetaLossPointRow, MetaRunRow
from optforge.storage.repo._common import dialect_insert, fields_of, get_row
from optforge.storage.repo.studies import DEFAULT_LEASE_S, TRANSITIONS

Q, R = StudyStatus.QUEUED, StudyStatus.RUNNING


@dataclass(frozen=True)
class MetaRunLease:
    """Who runs a meta-training run as a job: its owner, the worker holding it, and how often it was claimed."""

    run_id: int
    owner_id: int | None
    claimed_by: str | None
    claim_count: int

    @property
    def resumed(self) -> int:
        """Times the job was started again after its worker stopped."""
        return max(self.claim_count - 1, 0)


def _lease(row: MetaRunRow) -> MetaRunLease:
    return MetaRunLease(run_id=row.id, owner_id=row.owner_id, claimed_by=row.claimed_by, claim_count=row.claim_count)


def _run(row: MetaRunRow, curve: list[MetaLossPoint] | None = None) -> MetaRunRecord:
    return MetaRunRecord(**fields_of(row, MetaRunRecord, curve=curve or []))


def _checkpoint(row: CheckpointRow) -> CheckpointRecord:
    return CheckpointRecord(**fields_of(row, CheckpointRecord))


@translating
def create_meta_run(
    session: Session, /, *, name: str, spec: Mapping[str, Any], queued: bool = False, owner_id: int | None = None
) -> MetaRunRecord:
    """A new meta-training run. ``spec`` is the meta-training specification as JSON data.

    ``running`` by default: a run its own process records (the CLI). ``queued=True``: a job for the service's
    scheduler (``claim_next_meta_run``), submitted by ``owner_id``. NotFound when ``owner_id`` names no user.
    """
    row = MetaRunRow(name=name, spec=json_safe(dict(spec)), status=Q if queued else R, owner_id=owner_id)
    session.add(row)
    session.flush()
    return _run(row)


@translating
def set_meta_run_status(
    session: Session, /, *, run_id: int, status: StudyStatus, error: str | None = None
) -> MetaRunRecord:
    """Move the run to ``status`` (same life cycle as a study's); ``error`` says why it failed."""
    row = get_row(session, MetaRunRow, run_id, "meta-training run", for_update=True)
    if status not in TRANSITIONS[row.status]:
        raise InvalidTransition("meta-training run", run_id, row.status.value, status.value)
    if status.finished and row.status != status:
        row.finished_at = utcnow()
    row.status = status
    if error is not None:
        row.error = error
    session.flush()
    return _run(row)


@translating
def insert_meta_loss_points(session: Session, /, *, run_id: int, points: Sequence[MetaLossPoint]) -> int:
    """Store meta-loss points of the run (batched; steps already stored are skipped). Returns how many were new."""
    rows = [
        {
            "run_id": run_id,
            "step": p.step,
            "meta_loss": p.meta_loss,
            "wall_time": p.wall_time,
            "metrics": json_safe(p.metrics),
        }
        for p in points
    ]
    if not rows:
        return 0
    stmt = dialect_insert(session, MetaLossPointRow.__table__).on_conflict_do_nothing()
    return session.execute(stmt, rows, execution_options={"preserve_rowcount": True}).rowcount


@translating
def get_meta_run(session: Session, /, *, run_id: int, with_curve: bool = True) -> MetaRunRecord:
    """The run (and its meta-loss curve, in step order, if ``with_curve``), or NotFound."""
    row = get_row(session, MetaRunRow, run_id, "meta-training run")
    curve = None
    if with_curve:
        stmt = select(MetaLossPointRow).where(MetaLossPointRow.run_id == run_id).order_by(MetaLossPointRow.step)
        curve = [_point(p) for p in session.scalars(stmt)]
    return _run(row, curve)


@translating
def forget_meta_run_after(session: Session, /, *, run_id: int, step: int) -> int:
    """Delete the run's meta-loss points and checkpoints past outer ``step`` (it resumes from there).

    Returns how many points went. A resumed run records those steps again, from the resumed state.
    """
    deleted = session.execute(
        delete(MetaLossPointRow).where(MetaLossPointRow.run_id == run_id, MetaLossPointRow.step > step)
    ).rowcount
    session.execute(delete(CheckpointRow).where(CheckpointRow.run_id == run_id, CheckpointRow.step > step))
    return int(deleted or 0)


@translating
def meta_run_progress(session: Session, /, *, run_ids: Iterable[int]) -> dict[int, MetaLossPoint]:
    """The last stored meta-loss point of each run that has one (its step is the outer steps done)."""
    ids = list(run_ids)
    if not ids:
        return {}
    last = (
        select(MetaLossPointRow.run_id, func.max(MetaLossPointRow.step).label("step"))
        .where(MetaLossPointRow.run_id.in_(ids))
        .group_by(MetaLossPointRow.run_id)
        .subquery()
    )
    stmt = select(MetaLossPointRow).join(
        last, and_(MetaLossPointRow.run_id == last.c.run_id, MetaLossPointRow.step == last.c.step)
    )
    return {p.run_id: _point(p) for p in session.scalars(stmt)}


def _point(row: MetaLossPointRow) -> MetaLossPoint:
    # Non-finite values were stored as null (JSON has no spelling for them): NaN for the loss, left out of
    # the metrics (a diverged evaluation's final loss is inf).
    metrics = {k: v for k, v in (row.metrics or {}).items() if v is not None}
    meta_loss = float("nan") if row.meta_loss is None else row.meta_loss
    return MetaLossPoint(step=row.step, meta_loss=meta_loss, wall_time=row.wall_time or 0.0, metrics=metrics)


@translating
def list_meta_runs(
    session: Session, /, *, name: str | None = None, limit: int | None = None, offset: int = 0
) -> list[MetaRunRecord]:
    """Runs (without curves), newest first; only those called ``name`` if given."""
    stmt = select(MetaRunRow).order_by(MetaRunRow.id.desc()).offset(offset).limit(limit)
    if name is not None:
        stmt = stmt.where(MetaRunRow.name == name)
    return [_run(row) for row in session.scalars(stmt)]


@translating
def count_meta_runs(
    session: Session,
    /,
    *,
    name: str | None = None,
    owner_id: int | None = None,
    statuses: Iterable[StudyStatus] | None = None,
) -> int:
    """How many runs there are (called ``name``, of ``owner_id``, in one of ``statuses``, when given)."""
    stmt = select(func.count()).select_from(MetaRunRow)
    if name is not None:
        stmt = stmt.where(MetaRunRow.name == name)
    if owner_id is not None:
        stmt = stmt.where(MetaRunRow.owner_id == owner_id)
    if statuses is not None:
        stmt = stmt.where(MetaRunRow.status.in_(list(statuses)))
    return session.scalar(stmt) or 0


# --- the service's jobs: leases, as for studies (repo.studies) --------------------------------------------


@translating
def get_meta_run_leases(session: Session, /, *, run_ids: Iterable[int]) -> dict[int, MetaRunLease]:
    """Owner and lease of each run in ``run_ids`` that exists."""
    ids = list(run_ids)
    if not ids:
        return {}
    return {row.id: _lease(row) for row in session.scalars(select(MetaRunRow).where(MetaRunRow.id.in_(ids)))}


@translating
def claim_next_meta_run(session: Session, /, *, worker: str, lease_s: float = DEFAULT_LEASE_S) -> MetaRunLease | None:
    """Give ``worker`` the oldest run that is queued, or running under an expired lease; None if none.

    The run becomes ``running`` with ``claimed_by=worker``, a fresh heartbeat and ``claim_count`` one
    higher; the claim is a compare-and-set, so two workers never get the same run. Runs without a
    heartbeat (the CLI's) never expire.
    """
    now = utcnow()
    claimable = or_(
        MetaRunRow.status == Q, and_(MetaRunRow.status == R, MetaRunRow.heartbeat_at < now - timedelta(seconds=lease_s))
    )
    candidates = session.scalars(select(MetaRunRow.id).where(claimable).order_by(MetaRunRow.id).limit(100)).all()
    for run_id in candidates:
        claimed = session.execute(
            update(MetaRunRow)
            .where(MetaRunRow.id == run_id, claimable)
            .values(
                status=R, claimed_by=worker, heartbeat_at=now, claim_count=MetaRunRow.claim_count + 1, updated_at=now
            ),
            execution_options={"synchronize_session": "fetch"},
        ).rowcount
        if claimed == 1:
            return _lease(session.get(MetaRunRow, run_id, populate_existing=True))  # type: ignore[arg-type]
    return None


def _held(run_id: int, worker: str) -> Any:
    return and_(MetaRunRow.id == run_id, MetaRunRow.claimed_by == worker, MetaRunRow.status == R)


def _lost(session: Session, run_id: int, worker: str) -> LeaseLost:
    row = get_row(session, MetaRunRow, run_id, "meta-training run")
    return LeaseLost(f"meta-training run {run_id} is {row.status.value} and held by {row.claimed_by!r}, not {worker!r}")


@translating
def heartbeat_meta_run(session: Session, /, *, run_id: int, worker: str) -> None:
    """Renew ``worker``'s lease on the run. LeaseLost when it no longer holds it (another worker took it
    over, or the run was cancelled or finished): stop working on it. NotFound when it was deleted."""
    renewed = session.execute(
        update(MetaRunRow).where(_held(run_id, worker)).values(heartbeat_at=utcnow()),
        execution_options={"synchronize_session": "fetch"},
    ).rowcount
    if renewed == 0:
        raise _lost(session, run_id, worker)


@translating
def release_meta_run(session: Session, /, *, run_id: int, worker: str) -> None:
    """Give the lease back (the service stops): the run is queued again, for any worker to resume."""
    released = session.execute(
        update(MetaRunRow).where(_held(run_id, worker)).values(status=Q, claimed_by=None, heartbeat_at=None),
        execution_options={"synchronize_session": "fetch"},
    ).rowcount
    if released == 0:
        raise _lost(session, run_id, worker)


@translating
def finish_meta_run(
    session: Session, /, *, run_id: int, worker: str, status: StudyStatus, error: str | None = None
) -> MetaRunRecord:
    """End the run ``worker`` holds with ``status`` (completed, failed...); LeaseLost if it does not hold it."""
    row = session.get(MetaRunRow, run_id, with_for_update=True)
    if row is None or row.claimed_by != worker or row.status != R:
        raise _lost(session, run_id, worker)
    row.claimed_by, row.heartbeat_at = None, None
    session.flush()
    return set_meta_run_status(session, run_id=run_id, status=status, error=error)


@translating
def save_checkpoint(
    session: Session,
    /,
    *,
    name: str,
    weights: bytes,
    spec: Mapping[str, Any],
    step: int,
    metrics: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    weights_format: str = "safetensors",
) -> CheckpointRecord:
    """Store a checkpoint of the learned optimizer ``name`` at meta-training ``step``."""
    row = CheckpointRow(
        name=name,
        run_id=run_id,
        step=step,
        weights=bytes(weights),
        weights_format=weights_format,
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        size_bytes=len(weights),
        spec=json_safe(dict(spec)),
        metrics=json_safe(dict(metrics or {})),
    )
    session.add(row)
    session.flush()
    return _checkpoint(row)


@translating
def get_checkpoint(session: Session, /, *, checkpoint_id: int) -> CheckpointRecord:
    return _checkpoint(get_row(session, CheckpointRow, checkpoint_id, "checkpoint"))


@translating
def latest_checkpoint(session: Session, /, *, name: str) -> CheckpointRecord:
    """The checkpoint of ``name`` with the highest step (the newest on ties), or NotFound."""
    stmt = (
        select(CheckpointRow)
        .where(CheckpointRow.name == name)
        .order_by(CheckpointRow.step.desc(), CheckpointRow.id.desc())
        .limit(1)
    )
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound("checkpoint", f"name {name!r}")
    return _checkpoint(row)


@translating
def list_checkpoints(
    session: Session, /, *, name: str | None = None, run_id: int | None = None
) -> list[CheckpointRecord]:
    """Checkpoints (without weights) by name and step."""
    stmt = select(CheckpointRow).order_by(CheckpointRow.name, CheckpointRow.step, CheckpointRow.id)
    if name is not None:
        stmt = stmt.where(CheckpointRow.name == name)
    if run_id is not None:
        stmt = stmt.where(CheckpointRow.run_id == run_id)
    return [_checkpoint(row) for row in session.scalars(stmt)]


@translating
def load_weights(session: Session, /, *, checkpoint_id: int) -> bytes:
    """The checkpoint's weight bytes, checked against their stored SHA-256."""
    row = session.execute(
        select(CheckpointRow.weights, CheckpointRow.weights_sha256).where(CheckpointRow.id == checkpoint_id)
    ).one_or_none()
    if row is None:
        raise NotFound("checkpoint", f"id {checkpoint_id}")
    weights, digest = bytes(row[0]), row[1]
    if hashlib.sha256(weights).hexdigest() != digest:
        raise StorageError(f"checkpoint {checkpoint_id}: stored weights do not match their SHA-256; the row is corrupt")
    return weights


@translating
def cancel_meta_run(session: Session, /, *, run_id: int) -> MetaRunRecord:
    """Cancel a queued or running run at once. Its worker's next heartbeat or write fails with LeaseLost,
    and it stops. A finished run is returned unchanged. NotFound if there is no such run."""
    row = get_row(session, MetaRunRow, run_id, "meta-training run", for_update=True)
    if row.status.finished:
        return _run(row)
    row.claimed_by, row.heartbeat_at = None, None
    session.flush()
    return set_meta_run_status(session, run_id=run_id, status=StudyStatus.CANCELLED)


@translating
def reopen_meta_run(session: Session, /, *, run_id: int, spec: Mapping[str, Any]) -> MetaRunRecord:
    """A run recorded by its own process (the CLI's, never a service job) continues: ``running`` again,
    whatever it ended as (a crash, or completed and now extended), with its spec updated to ``spec``."""
    row = get_row(session, MetaRunRow, run_id, "meta-training run", for_update=True)
    if row.claim_count:
        raise InvalidTransition("meta-training run", run_id, f"{row.status.value} service job", R.value)
    row.status, row.error, row.finished_at, row.spec = R, None, None, json_safe(dict(spec))
    session.flush()
    return _run(row)
