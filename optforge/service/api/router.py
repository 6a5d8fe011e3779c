"""Every API route, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from optforge.service.api.routes import events, health, meta_runs, registry, results, studies, trials

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
for module in (studies, trials, events, results, registry, meta_runs, health):
    api_router.include_router(module.router)
