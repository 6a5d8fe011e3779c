"""``/families`` and ``/schedules``: the registry of optimizer families and LR schedules."""

from __future__ import annotations

from fastapi import APIRouter

from optforge.catalog import FAMILIES, SCHEDULES
from optforge.service.api.deps import CallerDep
from optforge.spec._api import FamiliesPublic, SchedulesPublic

router = APIRouter(tags=["registry"])


@router.get("/families", response_model=FamiliesPublic)
def list_families(_caller: CallerDep) -> FamiliesPublic:
    """Every optimizer family: its library, hyperparameters (defaults, valid values, search ranges) and reference."""
    return FamiliesPublic(data=list(FAMILIES.values()), count=len(FAMILIES))


@router.get("/schedules", response_model=SchedulesPublic)
def list_schedules(_caller: CallerDep) -> SchedulesPublic:
    """Every learning-rate schedule with its parameters."""
    return SchedulesPublic(data=list(SCHEDULES.values()), count=len(SCHEDULES))
