"""``/studies/{id}/events``: a study's live event stream (server-sent events).

The stream reads the study's event log in the database, so it shows events written by a driver in any
process and resumes exactly where a client left off: each message's ``id`` is the event's id, and a
reconnecting client sends ``Last-Event-ID`` (browsers do it themselves) or ``?after=``. Each message's
``event`` is the event kind (``trial_started``, ``trial_result``, ``trial_finished``, ``best_changed``,
``phase``, ``started``, ``finished``) and its ``data`` the JSON of the stored event. The stream ends
after ``finished``, or at once for a study that had already finished when every event was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from optforge.service.api.deps import OwnedStudyNowDep, StateDep, in_db_thread
from optforge.service.api.routes.studies import ERRORS
from optforge.spec import StoredStudyEvent, StudyEventKind, StudyStatus
from optforge.storage.errors import NotFound
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import studies as studies_repo

router = APIRouter(tags=["studies"])

# Browsers reconnect after this many milliseconds when a stream drops (sent once, with the first message).
RECONNECT_MS = 2000
# Errors are JSON even on this route: with a model, FastAPI would document them as text/event-stream (the
# route's media type), which is not what the error handlers send.
JSON_ERRORS = {
    code: {
        "description": response["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}},
    }
    for code, response in ERRORS.items()
}


@router.get("/studies/{study_id}/events", response_class=EventSourceResponse, responses=JSON_ERRORS)
async def study_events(
    study: OwnedStudyNowDep,
    state: StateDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=2**62)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="send events after this id")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Stream the study's events, from the start or after ``Last-Event-ID`` / ``after``, until it finishes."""
    storage, study_id = state.storage, study.id
    cursor = max(last_event_id or 0, after or 0)
    poll = state.settings.stream_poll_interval_s
    first = True

    def read(after_id: int) -> list[StoredStudyEvent]:
        with storage.session(readonly=True) as session:
            return events_repo.list_events(session, study_id=study_id, after_id=after_id)

    def status() -> StudyStatus | None:
        try:
            with storage.session(readonly=True) as session:
                return studies_repo.get_study(session, study_id=study_id).status
        except NotFound:  # deleted while streaming
            return None

    while True:
        events = await in_db_thread(state, read, cursor)
        for event in events:
            cursor = event.id
            yield ServerSentEvent(
                data=event.model_dump(mode="json"),
                event=event.kind.value,
                id=str(event.id),
                retry=RECONNECT_MS if first else None,
            )
            first = False
            if event.kind == StudyEventKind.FINISHED:
                return
        if events:
            continue  # a full page: read on at once
        current = await in_db_thread(state, status)
        if current is None:
            return
        if current.finished:
            # The final event is written with the final status: read once more so it is not missed.
            for event in await in_db_thread(state, read, cursor):
                yield ServerSentEvent(data=event.model_dump(mode="json"), event=event.kind.value, id=str(event.id))
            return
        await anyio.sleep(poll)
