"""``/studies/{id}/best`` and ``/configs/recommend``: what studies learned, ready to use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from optforge.service.api.deps import CallerDep, OwnedStudyDep, ReadSessionDep
from optforge.service.api.routes.studies import ERRORS
from optforge.service.errors import ApiError
from optforge.service.presenters import best_public, recommendation_public
from optforge.spec import TaskSpec
from optforge.spec._api import BestPublic, BestsPublic, RecommendationsPublic, RecommendCreate
from optforge.storage.repo import best as best_repo

router = APIRouter(tags=["results"])


@router.get("/studies/{study_id}/best", response_model=BestPublic, responses=ERRORS)
def get_best(study: OwnedStudyDep, session: ReadSessionDep) -> BestPublic:
    """The study's best configuration: its seed statistics and a ready-to-paste PyTorch snippet.

    404 until the study has finished with at least one completed trial.
    """
    bests = best_repo.list_best_configs(session, study_id=study.id)
    if not bests:
        raise ApiError(
            404,
            f"study {study.id} has no best configuration yet (it is {study.status.value}); "
            "it is saved when the study finishes",
            loc=("path", "study_id"),
            type="not_ready",
        )
    return best_public(bests[0])


@router.get("/studies/{study_id}/bests", response_model=BestsPublic, responses=ERRORS)
def list_bests(study: OwnedStudyDep, session: ReadSessionDep) -> BestsPublic:
    """All of the study's ranked best configurations (rank 0 first)."""
    bests = best_repo.list_best_configs(session, study_id=study.id)
    return BestsPublic(data=[best_public(b) for b in bests], count=len(bests))


@router.post("/configs/recommend", response_model=RecommendationsPublic, responses=ERRORS)
def recommend(
    body: RecommendCreate,
    caller: CallerDep,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=50, description="configurations to return")] = 5,
) -> RecommendationsPublic:
    """Stored configurations for the tasks closest to this one: exact matches (distance 0) first.

    Configurations come from every finished study: what they reveal is which optimizer settings worked
    for which kind of task, never a study's name, owner or data.
    """
    task = TaskSpec.model_validate(body.model_dump())
    recs = best_repo.recommend(session, task=task, limit=limit)
    data = [recommendation_public(r.best, distance=r.distance, exact=r.exact) for r in recs]
    return RecommendationsPublic(data=data, count=len(data))
