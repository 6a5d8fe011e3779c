"""Study events: an append-only log per study, read by the live stream (server-sent events).

Event ids are 1, 2, 3... within each study, taken from a counter on the study row in the same
transaction as the insert. The row lock orders writers, so ids become visible in increasing order
and a client that reconnects with ``Last-Event-ID: n`` (``list_events(after_id=n)``) misses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from optforge.spec import StoredStudyEvent, StudyEvent
from optforge.storage._types import json_safe
from optforge.storage.errors import translating
from optforge.storage.models import StudyEventRow, StudyRow
from optforge.storage.repo._common import bump_study_counter

# Events per read: enough for a client catching up after a long disconnect, small enough for one response.
DEFAULT_PAGE = 1000


@translating
def append_events(session: Session, /, *, study_id: int, events: Sequence[StudyEvent]) -> list[StoredStudyEvent]:
    """Append ``events`` to the study's log, in order; returns them with their ids. NotFound for no study."""
    if not events:
        return []
    last = bump_study_counter(session, StudyRow.last_event_id, study_id, len(events))
    first = last - len(events) + 1
    rows = [
        {
            "study_id": study_id,
            "seq": first + i,
            "kind": event.kind.value,
            "trial_key": event.trial_id,
            "data": json_safe(event.data),
            "time": event.time,
        }
        for i, event in enumerate(events)
    ]
    session.execute(insert(StudyEventRow), rows)
    return [
        StoredStudyEvent(
            id=row["seq"], study_id=study_id, kind=e.kind, trial_id=e.trial_id, data=row["data"], time=e.time
        )
        for row, e in zip(rows, events, strict=True)
    ]


@translating
def append_event(session: Session, /, *, study_id: int, event: StudyEvent) -> StoredStudyEvent:
    """Append one event; see ``append_events``."""
    return append_events(session, study_id=study_id, events=[event])[0]


@translating
def list_events(
    session: Session, /, *, study_id: int, after_id: int = 0, limit: int = DEFAULT_PAGE
) -> list[StoredStudyEvent]:
    """The study's events with id > ``after_id``, oldest first, at most ``limit``."""
    stmt = (
        select(StudyEventRow)
        .where(StudyEventRow.study_id == study_id, StudyEventRow.seq > after_id)
        .order_by(StudyEventRow.seq)
        .limit(limit)
    )
    return [
        StoredStudyEvent(
            id=row.seq, study_id=row.study_id, kind=row.kind, trial_id=row.trial_key, data=row.data, time=row.time
        )
        for row in session.scalars(stmt)
    ]
