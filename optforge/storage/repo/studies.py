"""Studies: create, read, list, status changes, cancellation, and the lease a worker holds while running one.

The scheduler's loop is ``claim_next_study`` → ``heartbeat`` every few seconds → ``set_study_status``
(with ``worker=``) at the end. A worker that dies stops heart-beating; once its lease is older than
``lease_s``, the next ``claim_next_study`` hands the study to another worker (``claim_count`` goes up,
and the search resumes from what storage already holds).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from optforge.spec import StudyDetail, StudyRecord, StudySpec, StudyStatus
from optforge.storage._types import utcnow
from optforge.storage.errors import InvalidTransition, LeaseLost, NotFound, translating
from optforge.storage.fingerprint import task_fingerprint
from optforge.storage.models import StudyRow, TrialRow
from optforge.storage.repo._common import curves_by_trial, fields_of, get_row, study_record, trial_record

Q, R, C, F, X = (StudyStatus.QUEUED, StudyStatus.RUNNING, StudyStatus.COMPLETED, StudyStatus.FAILED,
                 StudyStatus.CANCELLED)  # fmt: skip
# Which status may follow which. Re-setting the current status is allowed (idempotent after a restart);
# failed → queued is a user's retry; running → queued is a lease given back or taken over.
TRANSITIONS: dict[StudyStatus, frozenset[StudyStatus]] = {
    Q: frozenset({Q, R, F, X}),
    R: frozenset({R, Q, C, F, X}),
    C: frozenset({C}),
    F: frozenset({F, Q}),
    X: frozenset({X}),
}
# A worker that has not sent a heartbeat for this long is presumed dead. Several missed heartbeats (the
# service beats every few seconds) rather than one, so a slow database write does not hand a study over.
DEFAULT_LEASE_S = 60.0


@translating
def create_study(session: Session, /, *, spec: StudySpec, owner_id: int | None = None) -> StudyRecord:
    """Store a new study as ``queued``. NotFound when ``owner_id`` names no user."""
    row = StudyRow(
        name=spec.name,
        owner_id=owner_id,
        spec=spec.model_dump(mode="json"),
        status=StudyStatus.QUEUED,
        fingerprint=task_fingerprint(spec.task),
        trials_total=spec.search.n_trials,
    )
    session.add(row)
    session.flush()
    return study_record(row)


@translating
def get_study(session: Session, /, *, study_id: int) -> StudyRecord:
    """The study, or NotFound."""
    return study_record(get_row(session, StudyRow, study_id, "study"))


@translating
def get_study_detail(session: Session, /, *, study_id: int, with_curves: bool = True) -> StudyDetail:
    """The study with every trial (ordered by number) and, if ``with_curves``, every metric point.

    Three queries whatever the number of trials: the study, its trials, and all their points.
    """
    study = get_row(session, StudyRow, study_id, "study")
    trials = session.scalars(select(TrialRow).where(TrialRow.study_id == study_id).order_by(TrialRow.number)).all()
    curves = curves_by_trial(session, study_id=study_id) if with_curves else {}
    records = [trial_record(t, curves.get(t.id)) for t in trials]
    return StudyDetail(**fields_of(study, StudyDetail, spec=StudySpec.model_validate(study.spec), trials=records))


@translating
def list_studies(
    session: Session,
    /,
    *,
    owner_id: int | None = None,
    status: StudyStatus | Collection[StudyStatus] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StudyRecord]:
    """Studies, newest first, optionally only one owner's and/or in one status (or any of several)."""
    stmt = select(StudyRow).where(*_filters(owner_id, status))
    stmt = stmt.order_by(StudyRow.created_at.desc(), StudyRow.id.desc()).limit(limit).offset(offset)
    return [study_record(row) for row in session.scalars(stmt)]


@translating
def count_studies(
    session: Session, /, *, owner_id: int | None = None, status: StudyStatus | Collection[StudyStatus] | None = None
) -> int:
    """How many studies ``list_studies`` would page through with the same filters.

    Several statuses are counted in one statement: on PostgreSQL each statement sees its own snapshot, so
    counting queued and then running separately counts a study twice when it starts in between.
    """
    return session.scalar(select(func.count()).select_from(StudyRow).where(*_filters(owner_id, status))) or 0


def _filters(owner_id: int | None, status: StudyStatus | Collection[StudyStatus] | None) -> list:
    conditions = []
    if owner_id is not None:
        conditions.append(StudyRow.owner_id == owner_id)
    if isinstance(status, StudyStatus):
        conditions.append(StudyRow.status == status)
    elif status is not None:
        conditions.append(StudyRow.status.in_(list(status)))
    return conditions


@translating
def set_study_status(
    session: Session,
    /,
    *,
    study_id: int,
    status: StudyStatus,
    error: str | None = None,
    worker: str | None = None,
) -> StudyRecord:
    """Move the study to ``status`` (InvalidTransition if its life cycle forbids it).

    ``worker``: the caller's worker id; LeaseLost unless that worker holds the study, so a worker that was
    presumed dead cannot finish a study another worker has taken over. Finishing or re-queueing clears
    the lease. ``error`` is stored when given (why it failed); re-queueing clears it.
    """
    row = get_row(session, StudyRow, study_id, "study", for_update=True)
    repeated_finish = status == row.status and status.finished  # the same worker reporting twice
    if worker is not None and row.claimed_by != worker and not repeated_finish:
        raise LeaseLost(f"study {study_id} is held by {row.claimed_by!r}, not by worker {worker!r}")
    _check(row, status)
    now = utcnow()
    if status == R and row.started_at is None:
        row.started_at = now
    if status.finished or status == Q:
        row.claimed_by = None
        row.heartbeat_at = None
    if status.finished and row.status != status:
        row.finished_at = now
    if status == Q:
        row.finished_at = None
        row.cancel_requested = False
    if error is not None:
        row.error = error
    elif status == Q:
        row.error = None
    row.status = status
    session.flush()
    return study_record(row)


def _check(row: StudyRow, status: StudyStatus) -> None:
    if status not in TRANSITIONS[row.status]:
        raise InvalidTransition("study", row.id, row.status.value, status.value)


@translating
def request_cancel(session: Session, /, *, study_id: int) -> StudyRecord:
    """Cancel the study: a queued one at once; a running one is flagged (``cancel_requested``) for its
    worker, which sees the flag on its next heartbeat. A finished study is returned unchanged."""
    row = get_row(session, StudyRow, study_id, "study", for_update=True)
    if row.status == Q:
        row.status = X
        row.finished_at = utcnow()
    elif row.status == R:
        row.cancel_requested = True
    session.flush()
    return study_record(row)


@translating
def delete_study(session: Session, /, *, study_id: int) -> None:
    """Delete the study with its trials, points, events and best configurations. NotFound if absent."""
    if session.execute(delete(StudyRow).where(StudyRow.id == study_id)).rowcount == 0:
        raise NotFound("study", f"id {study_id}")


@translating
def claim_next_study(
    session: Session,
    /,
    *,
    worker: str,
    lease_s: float = DEFAULT_LEASE_S,
    max_running_per_owner: int | None = None,
) -> StudyRecord | None:
    """Give ``worker`` the oldest study that is queued, or running under an expired lease; None if none.

    The study becomes ``running`` with ``claimed_by=worker`` and a fresh heartbeat. Two workers never
    get the same study: the claim is a compare-and-set on the status and heartbeat. Owners with
    ``max_running_per_owner`` live studies are skipped. Running studies whose cancellation was requested
    and whose lease expired are marked cancelled on the way.
    """
    now = utcnow()
    stale = now - timedelta(seconds=lease_s)
    expired = and_(StudyRow.status == R, StudyRow.heartbeat_at < stale)
    session.execute(
        update(StudyRow)
        .where(expired, StudyRow.cancel_requested.is_(True))
        .values(status=X, finished_at=now, claimed_by=None, heartbeat_at=None),
        execution_options={"synchronize_session": "fetch"},
    )
    claimable = or_(StudyRow.status == Q, expired)
    candidates = session.execute(
        select(StudyRow.id, StudyRow.owner_id).where(claimable).order_by(StudyRow.created_at, StudyRow.id).limit(100)
    ).all()
    running: dict[int | None, int] = {}
    if max_running_per_owner is not None:
        live = and_(StudyRow.status == R, StudyRow.heartbeat_at >= stale)
        stmt = select(StudyRow.owner_id, func.count()).where(live).group_by(StudyRow.owner_id)
        running = {owner: n for owner, n in session.execute(stmt)}
    for study_id, owner_id in candidates:
        if max_running_per_owner is not None and running.get(owner_id, 0) >= max_running_per_owner:
            continue
        claimed = session.execute(
            update(StudyRow)
            .where(StudyRow.id == study_id, claimable)
            .values(
                status=R,
                claimed_by=worker,
                claimed_at=now,
                heartbeat_at=now,
                claim_count=StudyRow.claim_count + 1,
                started_at=func.coalesce(StudyRow.started_at, now),
                updated_at=now,
            ),
            execution_options={"synchronize_session": "fetch"},
        ).rowcount
        if claimed == 1:
            return study_record(session.get(StudyRow, study_id, populate_existing=True))  # type: ignore[arg-type]
    return None


@translating
def heartbeat(session: Session, /, *, study_id: int, worker: str) -> StudyRecord:
    """Renew ``worker``'s lease on the study and return it (check ``cancel_requested``).

    LeaseLost when another worker holds it now (or it finished): stop working on it.
    """
    renewed = session.execute(
        update(StudyRow)
        .where(StudyRow.id == study_id, StudyRow.claimed_by == worker, StudyRow.status == R)
        .values(heartbeat_at=utcnow()),
        execution_options={"synchronize_session": "fetch"},
    ).rowcount
    row = get_row(session, StudyRow, study_id, "study")
    if renewed == 0:
        raise LeaseLost(f"study {study_id} is {row.status.value} and held by {row.claimed_by!r}, not {worker!r}")
    session.refresh(row)
    return study_record(row)


@translating
def release_study(session: Session, /, *, study_id: int, worker: str) -> StudyRecord:
    """Give the lease back (a graceful shutdown): the running study is queued again for any worker."""
    return set_study_status(session, study_id=study_id, status=Q, worker=worker)
