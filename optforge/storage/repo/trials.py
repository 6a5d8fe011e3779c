"""Trials: reported by the search as they start (``upsert_trial``) and end (``finish_trial``).

Both are idempotent: a trial is identified by the caller's ``key`` within its study (Ray Tune's trial id),
so re-reporting after a service or driver restart updates the same row and never duplicates it. The
study's ``trials_finished`` counter moves only when a trial enters or leaves a finished state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from optforge.spec import TrialConfig, TrialRecord, TrialResult, TrialStatus
from optforge.storage._types import json_safe, utcnow
from optforge.storage.errors import Conflict, InvalidTransition, NotFound, translating
from optforge.storage.models import StudyRow, TrialRow
from optforge.storage.repo._common import bump_study_counter, curves_by_trial, dialect_insert, get_row, trial_record
from optforge.storage.repo.metrics import insert_metric_points

S = TrialStatus
# Which status may follow which. Repeating the current status is a re-report and always allowed; a
# failed or cancelled trial may run again (a retry); a completed, pruned or diverged trial is final.
FINAL = frozenset({S.COMPLETED, S.PRUNED, S.DIVERGED})
TRANSITIONS: dict[TrialStatus, frozenset[TrialStatus]] = {
    S.QUEUED: frozenset(S),
    S.RUNNING: frozenset(S) - {S.QUEUED},
    S.COMPLETED: frozenset({S.COMPLETED}),
    S.PRUNED: frozenset({S.PRUNED}),
    S.DIVERGED: frozenset({S.DIVERGED}),
    S.FAILED: frozenset({S.FAILED, S.RUNNING}),
    S.CANCELLED: frozenset({S.CANCELLED, S.RUNNING}),
}


@translating
def upsert_trial(
    session: Session,
    /,
    *,
    study_id: int,
    key: str,
    config: TrialConfig,
    status: TrialStatus = TrialStatus.RUNNING,
    phase: str = "search",
    seed: int | None = None,
    width: int | None = None,
    resources: Mapping[str, Any] | None = None,
    node_id: str | None = None,
    attempt: int | None = None,
) -> TrialRecord:
    """Create the trial ``key`` of the study, or update it if it exists (after a restart, or a retry).

    A new trial gets the study's next ``number``. An existing one keeps its number and configuration
    (Conflict if ``config`` differs: the key was reused for another trial) and takes the new status,
    node and resources. Reporting a completed, pruned or diverged trial as queued or running again is
    a replay from before a restart: the stored trial is returned unchanged. ``attempt`` defaults to 1
    for a new trial and goes up by one when a failed or cancelled trial runs again. NotFound if the
    study does not exist.
    """
    stored = _existing(session, study_id, key)
    if stored is None:
        number = bump_study_counter(session, StudyRow.last_trial_number, study_id)
        now = utcnow()
        values = {
            "study_id": study_id,
            "key": key,
            "number": number,
            "config": config.model_dump(mode="json"),
            "status": status,
            "phase": phase,
            "seed": seed,
            "width": width,
            "resources": json_safe(dict(resources or {})),
            "node_id": node_id,
            "attempt": attempt or 1,
            "steps": 0,
            "info": {},
            "created_at": now,
            "updated_at": now,
            "started_at": now if status == S.RUNNING else None,
            "finished_at": now if status.finished else None,
        }
        stmt = (
            dialect_insert(session, TrialRow).values(values).on_conflict_do_nothing(index_elements=["study_id", "key"])
        )
        if session.execute(stmt.returning(TrialRow.id)).scalar_one_or_none() is not None:
            if status.finished:
                bump_study_counter(session, StudyRow.trials_finished, study_id)
            row = _existing(session, study_id, key)
            assert row is not None
            return trial_record(row)
        stored = _existing(session, study_id, key)  # another writer inserted it between our read and insert
        assert stored is not None
    if stored.config != config.model_dump(mode="json"):
        raise Conflict(
            f"trial {key!r} of study {study_id} is stored with another configuration; give each trial its own key"
        )
    if stored.status in FINAL and not status.finished:
        return trial_record(stored)
    _transition(session, stored, status)
    if attempt is not None:
        stored.attempt = attempt
    elif status == S.RUNNING and stored.status in (S.FAILED, S.CANCELLED):
        stored.attempt += 1
    if status == S.RUNNING and stored.status != S.RUNNING:
        stored.started_at = utcnow()
        stored.finished_at = None
        stored.error = None
    stored.status = status
    stored.phase = phase
    for name, value in (("seed", seed), ("width", width), ("node_id", node_id)):
        if value is not None:
            setattr(stored, name, value)
    if resources is not None:
        stored.resources = json_safe(dict(resources))
    session.flush()
    return trial_record(stored)


@translating
def finish_trial(session: Session, /, *, trial_id: int, result: TrialResult, value: float | None = None) -> TrialRecord:
    """Record how the trial ended: status, summary, error and its curve (points already stored are kept).

    ``value`` is the objective the search ranked it by (default: ``result.final``). Reporting the same
    result twice is a no-op; changing a completed, pruned or diverged trial raises InvalidTransition.
    ``result.status`` must be a finished status (ValueError otherwise).
    """
    if not result.status.finished:
        raise ValueError(f"result.status must be a finished status, got {result.status.value!r}")
    row = get_row(session, TrialRow, trial_id, "trial", for_update=True)
    _transition(session, row, result.status)
    row.status = result.status
    row.metric = result.metric
    row.value = value if value is not None else result.final
    row.final = result.final
    row.best = result.best
    row.steps = result.steps
    row.step_reached_target = result.step_reached_target
    row.seconds_reached_target = result.seconds_reached_target
    row.wall_time = result.wall_time
    row.device = result.device
    row.error = result.error
    row.info = json_safe(result.info)
    node = result.info.get("node_id")
    if row.node_id is None and isinstance(node, str):
        row.node_id = node
    row.finished_at = row.finished_at or utcnow()
    session.flush()
    if result.curve:
        insert_metric_points(session, trial_id=trial_id, points=result.curve)
    return trial_record(row)


def _transition(session: Session, row: TrialRow, status: TrialStatus) -> None:
    """Check the transition and keep the study's finished-trials counter in step with it."""
    if status not in TRANSITIONS[row.status]:
        raise InvalidTransition("trial", f"{row.key!r} (id {row.id})", row.status.value, status.value)
    if status.finished != row.status.finished:
        bump_study_counter(session, StudyRow.trials_finished, row.study_id, 1 if status.finished else -1)


def _existing(session: Session, study_id: int, key: str) -> TrialRow | None:
    stmt = select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.key == key).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


@translating
def get_trial(session: Session, /, *, trial_id: int, with_curve: bool = False) -> TrialRecord:
    """The trial (with its metric points if ``with_curve``), or NotFound."""
    row = get_row(session, TrialRow, trial_id, "trial")
    curve = curves_by_trial(session, trial_id=trial_id).get(trial_id) if with_curve else None
    return trial_record(row, curve)


@translating
def get_trial_by_key(session: Session, /, *, study_id: int, key: str, with_curve: bool = False) -> TrialRecord:
    """The trial the caller knows as ``key`` in the study, or NotFound."""
    row = session.scalars(select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.key == key)).one_or_none()
    if row is None:
        raise NotFound("trial", f"key {key!r} in study {study_id}")
    curve = curves_by_trial(session, trial_id=row.id).get(row.id) if with_curve else None
    return trial_record(row, curve)


@translating
def list_trials(
    session: Session, /, *, study_id: int, status: TrialStatus | None = None, with_curves: bool = False
) -> list[TrialRecord]:
    """The study's trials by number; all their curves come in one extra query when ``with_curves``."""
    rows = session.scalars(select(TrialRow).where(*_filters(study_id, status)).order_by(TrialRow.number)).all()
    curves = curves_by_trial(session, study_id=study_id) if with_curves and rows else {}
    return [trial_record(row, curves.get(row.id)) for row in rows]


@translating
def count_trials(session: Session, /, *, study_id: int, status: TrialStatus | None = None) -> int:
    """How many of the study's trials there are (in ``status``, when given): one indexed count."""
    return session.scalar(select(func.count()).select_from(TrialRow).where(*_filters(study_id, status))) or 0


def _filters(study_id: int, status: TrialStatus | None) -> list:
    conditions = [TrialRow.study_id == study_id]
    if status is not None:
        conditions.append(TrialRow.status == status)
    return conditions


@translating
def best_trial(session: Session, /, *, study_id: int, mode: str, phase: str = "search") -> TrialRecord | None:
    """The completed ``phase`` trial with the best ``final`` metric in direction ``mode`` ("min"/"max"), or None.

    Ties go to the lowest trial number. One query that reads the first entry of the
    ``ix_optforge_trials_best`` index, however many trials the study has: a status poll must not read them all.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    stmt = (
        select(TrialRow)
        .where(
            TrialRow.study_id == study_id,
            TrialRow.status == S.COMPLETED,
            TrialRow.phase == phase,
            TrialRow.final.is_not(None),
        )
        .order_by(TrialRow.final.asc() if mode == "min" else TrialRow.final.desc(), TrialRow.number)
        .limit(1)
    )
    row = session.scalars(stmt).first()
    return None if row is None else trial_record(row)


@translating
def cancel_unfinished_trials(session: Session, /, *, study_id: int, error: str | None = None) -> int:
    """Mark the study's queued and running trials cancelled (the study was cancelled or failed); returns how many."""
    stmt = (
        update(TrialRow)
        .where(TrialRow.study_id == study_id, TrialRow.status.in_([S.QUEUED, S.RUNNING]))
        .values(status=S.CANCELLED, error=error, finished_at=utcnow(), updated_at=utcnow())
    )
    count = session.execute(stmt, execution_options={"synchronize_session": "fetch"}).rowcount
    if count:
        bump_study_counter(session, StudyRow.trials_finished, study_id, count)
    return count
