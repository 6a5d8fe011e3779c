"""``/families`` and ``/schedules``: the registry of optimizer families and LR schedules."""

from __future__ import annotations

from fastapi import APIRouter

from optforge.catalog import FAMILIES, SCHEDULES
from optforge.service.api.deps import CallerDep
from optforge.spec._api import ErrorPublic, FamiliesPublic, SchedulesPublic

router = APIRouter(tags=["registry"])

AUTH_ERRORS = {
    401: {"model": ErrorPublic, "description": "missing or invalid API token"},
    429: {"model": ErrorPublic, "description": "rate limit reached"},
}


@router.get("/families", response_model=FamiliesPublic, responses=AUTH_ERRORS)
def list_families(_caller: CallerDep) -> FamiliesPublic:
    """Every optimizer family: its library, hyperparameters (defaults, valid values, search ranges) and reference."""
    return FamiliesPublic(data=list(FAMILIES.values()), count=len(FAMILIES))


@router.get("/schedules", response_model=SchedulesPublic, responses=AUTH_ERRORS)
def list_schedules(_caller: CallerDep) -> SchedulesPublic:
    """Every learning-rate schedule with its parameters."""
    return SchedulesPublic(data=list(SCHEDULES.values()), count=len(SCHEDULES))
