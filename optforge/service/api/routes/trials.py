"""``/studies/{id}/trials``: a study's trials and their learning curves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from optforge.service.api.deps import OwnedStudyDep, ReadSessionDep
from optforge.service.api.routes.studies import ERRORS
from optforge.service.errors import not_found
from optforge.service.presenters import trial_public
from optforge.spec import TrialStatus
from optforge.spec._api import MetricPointsPublic, TrialsPublic
from optforge.storage.errors import NotFound
from optforge.storage.repo import metrics as metrics_repo
from optforge.storage.repo import trials as trials_repo

router = APIRouter(prefix="/studies/{study_id}/trials", tags=["trials"])


@router.get("", response_model=TrialsPublic, responses=ERRORS)
def list_trials(
    study: OwnedStudyDep,
    session: ReadSessionDep,
    status: Annotated[TrialStatus | None, Query(description="only trials in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> TrialsPublic:
    """The study's trials in the order they started, with their configuration and summary."""
    trials = trials_repo.list_trials(session, study_id=study.id, status=status)
    return TrialsPublic(data=[trial_public(t) for t in trials[offset : offset + limit]], count=len(trials))


@router.get("/{trial_id}/metrics", response_model=MetricPointsPublic, responses=ERRORS)
def trial_metrics(
    study: OwnedStudyDep,
    session: ReadSessionDep,
    trial_id: Annotated[int, Path(ge=1, le=2**62)],
    after_step: Annotated[int | None, Query(ge=-1, le=2**62, description="only points after this step")] = None,
) -> MetricPointsPublic:
    """One trial's learning curve (train and validation metrics, LR, throughput), in step order."""
    try:
        trial = trials_repo.get_trial(session, trial_id=trial_id)
    except NotFound:
        raise not_found("trial", trial_id) from None
    if trial.study_id != study.id:
        raise not_found("trial", trial_id)
    points = metrics_repo.get_curve(session, trial_id=trial_id, after_step=after_step)
    return MetricPointsPublic(trial_id=trial_id, data=points, count=len(points))
