"""Learned optimizers: meta-training runs with their meta-loss curves, and weight checkpoints.

Weights are stored as the bytes the caller serialized (``weights_format`` says how, e.g. ``safetensors``)
with their SHA-256, which ``load_weights`` checks on the way out. Listings never read the blobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from optforge.spec import CheckpointRecord, MetaLossPoint, MetaRunRecord, StudyStatus
from optforge.storage._types import json_safe, utcnow
from optforge.storage.errors import InvalidTransition, NotFound, StorageError, translating
from optforge.storage.models import CheckpointRow, MetaLossPointRow, MetaRunRow
from optforge.storage.repo._common import dialect_insert, fields_of, get_row
from optforge.storage.repo.studies import TRANSITIONS


def _run(row: MetaRunRow, curve: list[MetaLossPoint] | None = None) -> MetaRunRecord:
    return MetaRunRecord(**fields_of(row, MetaRunRecord, curve=curve or []))


def _checkpoint(row: CheckpointRow) -> CheckpointRecord:
    return CheckpointRecord(**fields_of(row, CheckpointRecord))


@translating
def create_meta_run(session: Session, /, *, name: str, spec: Mapping[str, Any]) -> MetaRunRecord:
    """A new meta-training run, ``running``. ``spec`` is the meta-training specification as JSON data."""
    row = MetaRunRow(name=name, spec=json_safe(dict(spec)), status=StudyStatus.RUNNING)
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
        curve = [
            MetaLossPoint(step=p.step, meta_loss=_nan(p.meta_loss), wall_time=p.wall_time or 0.0, metrics=p.metrics)
            for p in session.scalars(stmt)
        ]
    return _run(row, curve)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


@translating
def list_meta_runs(session: Session, /, *, name: str | None = None) -> list[MetaRunRecord]:
    """Runs (without curves), newest first; only those called ``name`` if given."""
    stmt = select(MetaRunRow).order_by(MetaRunRow.id.desc())
    if name is not None:
        stmt = stmt.where(MetaRunRow.name == name)
    return [_run(row) for row in session.scalars(stmt)]


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
