"""Dependencies of the routes, as ``Annotated[..., Depends(...)]`` aliases.

- ``StateDep``: the app's ServiceState (settings, storage, scheduler...).
- ``SessionDep``: one unit of work (commits when the request succeeds); ``ReadSessionDep`` never writes.
- ``CallerDep``: the authenticated Principal (401 without a valid token unless the server runs open;
  429 past the token's rate limit).
- ``OwnedStudyDep``: the study in the path, if the caller may see it; 404 otherwise, whether it does not
  exist or belongs to someone else, so ids reveal nothing. ``OwnedStudyNowDep`` is the same, read in a
  unit of work of its own (for the live stream, which must not hold a session open while it runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from optforge.service.auth import ANONYMOUS, Principal
from optforge.service.errors import ApiError, not_found
from optforge.service.state import ServiceState
from optforge.spec import StudyRecord
from optforge.storage.errors import NotFound
from optforge.storage.repo import studies as studies_repo


async def get_state(request: Request) -> ServiceState:  # async: no thread hop for an attribute read
    return request.app.state.optforge


StateDep = Annotated[ServiceState, Depends(get_state)]

# Sessions are typed Any: the ORM session type lives in optforge.storage, and only storage imports SQLAlchemy.
Session = Any


def get_session(state: StateDep) -> Iterator[Session]:
    with state.storage.session() as session:
        yield session


def get_read_session(state: StateDep) -> Iterator[Session]:
    with state.storage.session(readonly=True) as session:
        yield session


# scope="function": the unit of work commits before the response is sent, so a 201 means it is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="an API token from `optforge token create`")


async def get_caller(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    # Async, with the database reached from a thread only on a cache miss: this runs on every request.
    auth = state.auth
    if credentials is None:
        is_open = auth.open_mode if auth.mode_is_fresh() else await anyio.to_thread.run_sync(lambda: auth.open_mode)
        if is_open:
            return ANONYMOUS
        raise ApiError(
            401,
            "this server requires an API token: send 'Authorization: Bearer <token>' "
            "(create one with `optforge token create`)",
            loc=("header", "authorization"),
            type="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = credentials.credentials
    known, principal = auth.cached(token)
    if not known:
        principal = await anyio.to_thread.run_sync(auth.authenticate, token)
    if principal is None:
        raise ApiError(
            401,
            "unknown, revoked or expired API token",
            loc=("header", "authorization"),
            type="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not state.limiter.allow(principal.rate_key):
        raise ApiError(
            429,
            f"rate limit of {state.settings.rate_limit_per_minute} requests per minute exceeded for this token",
            loc=("header", "authorization"),
            type="rate_limited",
            headers={"Retry-After": str(state.limiter.retry_after_s())},
        )
    return principal


CallerDep = Annotated[Principal, Depends(get_caller)]

T = TypeVar("T")


async def in_db_thread(state: ServiceState, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` (database work) in one of the few database threads: one thread hop per request."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=state.db_limiter)


def read_owned_study(state: ServiceState, session: Session, caller: Principal, study_id: int) -> StudyRecord:
    """The study if ``caller`` may see it; 404 (the same for missing and not yours) otherwise."""
    try:
        study = studies_repo.get_study(session, study_id=study_id)
    except NotFound:
        raise not_found("study", study_id) from None
    if not caller.owns(study.owner_id):
        raise not_found("study", study_id)
    return study


StudyId = Annotated[int, Path(ge=1, le=2**62, description="the study's id")]


def get_owned_study(study_id: StudyId, caller: CallerDep, state: StateDep, session: ReadSessionDep) -> StudyRecord:
    return read_owned_study(state, session, caller, study_id)


OwnedStudyDep = Annotated[StudyRecord, Depends(get_owned_study)]


async def get_owned_study_now(study_id: StudyId, caller: CallerDep, state: StateDep) -> StudyRecord:
    """``get_owned_study`` in its own short unit of work: for streams, which must hold no session open."""

    def read() -> StudyRecord:
        with state.storage.session(readonly=True) as session:
            return read_owned_study(state, session, caller, study_id)

    return await in_db_thread(state, read)


OwnedStudyNowDep = Annotated[StudyRecord, Depends(get_owned_study_now)]
