"""``create_app(settings)``: the FastAPI application, with no module-level engine, queue or connection.

Startup (the lifespan) opens storage (running migrations), decides the auth mode (refusing open mode off
loopback), connects Ray (an existing cluster, a local one, or the connection this process already has),
and starts the scheduler, whose first pass resumes the studies that were queued or running when the
service last stopped. Shutdown puts this service's running studies back in the queue and closes what
startup opened.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import ray
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from optforge.service.api.router import API_PREFIX, api_router
from optforge.service.api.routes import health
from optforge.service.auth import Authenticator
from optforge.service.errors import install_error_handlers
from optforge.service.guard import RequestGuard
from optforge.service.ratelimit import RateLimiter
from optforge.service.ray_runtime import connect_ray
from optforge.service.scheduler import Scheduler
from optforge.service.state import ServiceState
from optforge.settings import Settings
from optforge.storage.database import Storage
from optforge.storage.errors import StorageError

log = logging.getLogger("optforge.service")

# Threads that run database work for the async hot paths (status polls). Each query takes a millisecond or
# two and holds the GIL most of it; a few threads keep the database busy, while dozens would only queue
# on the GIL and delay the event loop (at 50 concurrent pollers, anyio's default 40 tripled p99).
DB_THREADS = 4


class ServiceStartupError(RuntimeError):
    """The service cannot start; the message says what to fix."""


def _open_storage(settings: Settings) -> Storage:
    url = settings.resolved_database_url()
    try:
        return Storage.open(url)
    except (StorageError, OSError) as exc:
        where = settings.data_dir if settings.database_url is None else "the database"
        raise ServiceStartupError(
            f"cannot open the database ({type(exc).__name__}: {exc}); check that {where} is reachable and "
            "writable, with free space (set OPTFORGE_DATA_DIR or OPTFORGE_DATABASE_URL)"
        ) from exc


def start_service(settings: Settings, storage: Storage | None = None) -> ServiceState:
    """Open storage, check the auth mode, connect Ray and start the scheduler (blocking)."""
    owns_storage = storage is None
    storage = storage or _open_storage(settings)
    try:
        auth = Authenticator(storage, host=settings.host, cache_s=settings.auth_cache_s)
        mode = auth.check_startup()
        database_url = (
            settings.resolved_database_url()
            if owns_storage
            else storage.engine.url.render_as_string(hide_password=False)
        )
        if (storage.dialect == "sqlite" and ":memory:" in database_url) or database_url.rstrip("/") == "sqlite:":
            log.warning("an in-memory SQLite database cannot be shared with study drivers: studies will fail")
        started_ray = connect_ray(settings.ray_address, cpus=settings.ray_cpus)
        scheduler = Scheduler(storage, settings, database_url=database_url)
        scheduler.start()
    except BaseException:
        if owns_storage:
            storage.close()
        raise
    log.info(
        "optforge service ready: database %s, auth %s, %d concurrent studies",
        storage.url,
        mode,
        settings.max_running_studies,
    )
    return ServiceState(
        settings=settings,
        storage=storage,
        database_url=database_url,
        auth=auth,
        limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        scheduler=scheduler,
        auth_mode=mode,
        owns_storage=owns_storage,
        started_ray=started_ray,
    )


def stop_service(state: ServiceState) -> None:
    """Stop the scheduler (queueing its running studies again) and close what ``start_service`` opened."""
    state.scheduler.stop()
    state.limiter.close()
    if state.owns_storage:
        state.storage.close()
    if state.started_ray:
        ray.shutdown()


def create_app(settings: Settings | None = None, *, storage: Storage | None = None) -> FastAPI:
    """The optforge service. ``storage`` (optional) is used instead of opening ``settings``' database and is
    left open at shutdown: the caller owns it."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In the event loop's own thread, not a worker thread: a local Ray started here dies with the
        # thread that started it (Linux parent-death signal), and idle worker threads exit after seconds.
        # Nothing is served before startup ends, so blocking the loop here costs nothing.
        state = start_service(settings, storage)
        state.db_limiter = anyio.CapacityLimiter(DB_THREADS)
        app.state.optforge = state
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(stop_service, state)

    app = FastAPI(
        title="optforge",
        summary="Find the best way to train your neural network.",
        description="Submit a study (a task and a search over optimizers and schedules), watch it live, and "
        "take its best configuration away as PyTorch code. Authenticate with `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    app.include_router(api_router)
    # Probes usually expect the bare paths; the same handlers also live under /api/v1.
    app.include_router(health.router, include_in_schema=False)
    _mount_web(app)
    return app


def _mount_web(app: FastAPI) -> None:
    """The status page (``optforge.service.web``, when installed) owns ``/``; without it ``/`` shows the docs."""
    if importlib.util.find_spec("optforge.service.web") is not None:
        from optforge.service import web

        web.install(app)
        return

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")


__all__ = ["API_PREFIX", "ServiceStartupError", "create_app", "start_service", "stop_service"]
