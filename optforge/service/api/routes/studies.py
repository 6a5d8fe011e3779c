"""``/studies``: submit, list, read, cancel and delete studies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from optforge.service.api.deps import (
    CallerDep,
    OwnedStudyDep,
    ReadSessionDep,
    SessionDep,
    StateDep,
    StudyId,
    in_db_thread,
)
from optforge.service.errors import ApiError, not_found
from optforge.service.limits import confine_data_path, limit_errors, search_errors, user_code_errors
from optforge.service.presenters import study_public
from optforge.service.state import ServiceState
from optforge.spec import StudyEvent, StudyEventKind, StudyRecord, StudySpec, StudyStatus
from optforge.spec._api import ErrorPublic, StudiesPublic, StudyCreate, StudyPublic
from optforge.storage.errors import NotFound
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import studies as studies_repo
from optforge.storage.repo import users as users_repo

router = APIRouter(prefix="/studies", tags=["studies"])

ERRORS = {
    401: {"model": ErrorPublic, "description": "missing or invalid API token"},
    404: {"model": ErrorPublic, "description": "no such study, or not yours"},
    422: {"model": ErrorPublic, "description": "invalid input, with field-level messages"},
    429: {"model": ErrorPublic, "description": "rate limit or active-study limit reached"},
}
# The studies that count against a user's active-study limit.
ACTIVE = (StudyStatus.QUEUED, StudyStatus.RUNNING)


def present(state: ServiceState, session: object, study: StudyRecord) -> StudyPublic:
    """The study as the API shows it, with its (cached) trial summary and owner name."""
    running, best = state.summaries.summary(session, study)
    return study_public(study, owner=state.summaries.owner_name(session, study.owner_id), running=running, best=best)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyPublic,
    responses={**ERRORS, 403: {"model": ErrorPublic, "description": "user code refused"}, 413: {"model": ErrorPublic}},
)
def create_study(body: StudyCreate, caller: CallerDep, state: StateDep, session: SessionDep) -> StudyPublic:
    """Queue a study. It starts when the scheduler has a free slot (see ``GET /studies/{id}`` for progress)."""
    settings = state.settings
    spec = StudySpec.model_validate(body.model_dump())
    task, path_errors = confine_data_path(spec.task, settings.data_dir)
    errors = limit_errors(spec, settings) + path_errors + search_errors(spec)
    if errors:
        raise ApiError(422, errors[0].msg, details=errors)
    code_errors = user_code_errors(spec.task, settings)
    if code_errors:
        raise ApiError(403, code_errors[0].msg, details=code_errors)
    spec = spec.model_copy(update={"task": task})
    users_repo.lock_submissions(session, owner_id=caller.user_id)  # the count stays true until the insert
    active = studies_repo.count_studies(session, owner_id=caller.user_id, status=ACTIVE)
    if active >= settings.max_active_studies_per_user:
        raise ApiError(
            429,
            f"you have {active} queued or running studies, the most this server allows "
            f"(OPTFORGE_MAX_ACTIVE_STUDIES_PER_USER={settings.max_active_studies_per_user}); "
            "wait for one to finish or cancel one",
            loc=("body",),
            type="limit_exceeded",
        )
    study = studies_repo.create_study(session, spec=spec, owner_id=caller.user_id)
    state.scheduler.wake()
    return study_public(study, owner=caller.name if caller.user_id is not None else None)


@router.get("", response_model=StudiesPublic, responses=ERRORS)
def list_studies(
    caller: CallerDep,
    state: StateDep,
    session: ReadSessionDep,
    status: Annotated[StudyStatus | None, Query(description="only studies in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="studies per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31, description="studies to skip")] = 0,
    mine: Annotated[bool, Query(description="admins: only your own studies")] = False,
) -> StudiesPublic:
    """Studies you own (an admin: everyone's), newest first."""
    owner = caller.user_id if (not caller.is_admin or mine) else None
    if caller.user_id is None:  # open mode: the anonymous caller sees everything
        owner = None
    studies = studies_repo.list_studies(session, owner_id=owner, status=status, limit=limit, offset=offset)
    count = studies_repo.count_studies(session, owner_id=owner, status=status)
    if not caller.is_admin:
        studies = [s for s in studies if caller.owns(s.owner_id)]
    return StudiesPublic(data=[present(state, session, s) for s in studies], count=count)


@router.get("/{study_id}", response_model=StudyPublic, responses=ERRORS)
async def get_study(study_id: StudyId, caller: CallerDep, state: StateDep) -> Response:
    """A study's status, progress, best trial so far and timing."""

    # What every client polls: the read and the JSON encoding are the caller-independent part, so polls of
    # one study that arrive together share them (state.status_reads); only the ownership check is per caller.
    def read() -> tuple[int | None, bytes] | None:
        with state.storage.session(readonly=True) as session:
            try:
                study = studies_repo.get_study(session, study_id=study_id)
            except NotFound:
                return None
            return study.owner_id, present(state, session, study).model_dump_json().encode()

    found = await state.status_reads.read(study_id, lambda: in_db_thread(state, read))
    if found is None or not caller.owns(found[0]):
        raise not_found("study", study_id)  # the same answer for missing and not yours
    return Response(found[1], media_type="application/json")  # already StudyPublic: no second validation


@router.post("/{study_id}/cancel", response_model=StudyPublic, responses=ERRORS)
def cancel_study(study: OwnedStudyDep, state: StateDep, session: SessionDep) -> StudyPublic:
    """Cancel a study: a queued one at once, a running one within seconds (its trials are stopped).

    Cancelling a finished study changes nothing and returns it as it is.
    """
    updated = studies_repo.request_cancel(session, study_id=study.id)
    if study.status == StudyStatus.QUEUED and updated.status == StudyStatus.CANCELLED:
        events_repo.append_event(
            session,
            study_id=study.id,
            event=StudyEvent(kind=StudyEventKind.FINISHED, data={"status": "cancelled", "error": None}),
        )
    state.scheduler.wake()
    return present(state, session, updated)


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_study(study: OwnedStudyDep, state: StateDep, session: SessionDep) -> Response:
    """Delete a study with its trials, curves, events and best configurations (a running one is stopped)."""
    studies_repo.delete_study(session, study_id=study.id)
    state.scheduler.abandon(study.id)  # its driver would see the study gone within a second anyway
    return Response(status_code=status.HTTP_204_NO_CONTENT)
