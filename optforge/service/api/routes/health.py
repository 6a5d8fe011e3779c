"""``/healthz`` (the process answers) and ``/readyz`` (the database and Ray answer too). No token needed."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from optforge.service.api.deps import StateDep
from optforge.service.ray_runtime import ray_ready
from optforge.spec._api import HealthPublic
from optforge.storage.errors import StorageError

router = APIRouter(tags=["health"])
# A check that has not answered by then counts as failed: a probe must answer faster than its own timeout.
READY_TIMEOUT_S = 5.0


@cache
def optforge_version() -> str:
    try:
        return version("optforge")
    except PackageNotFoundError:
        return "unknown"


@router.get("/healthz", response_model=HealthPublic)
def healthz(state: StateDep) -> HealthPublic:
    """Liveness: 200 while the process serves requests."""
    return HealthPublic(status="ok", version=optforge_version(), auth="open" if state.auth.open_mode else "token")


@router.get("/readyz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness: 200 when the database answers and Ray has a live node, else 503 saying which failed."""

    def database() -> str:
        try:
            state.storage.ping()
        except StorageError as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    checks = {"database": "timed out", "ray": "timed out"}
    with anyio.move_on_after(READY_TIMEOUT_S):
        checks["database"] = await anyio.to_thread.run_sync(database, abandon_on_cancel=True)
        checks["ray"] = await anyio.to_thread.run_sync(ray_ready, abandon_on_cancel=True)
    ok = all(v == "ok" for v in checks.values())
    body = HealthPublic(status="ok" if ok else "unavailable", checks=checks, version=optforge_version())
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)
