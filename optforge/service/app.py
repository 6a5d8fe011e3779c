"""``create_app(settings)``: the FastAPI application, with no module-level engine, queue or connection.

Startup (the lifespan) opens storage (running migrations), decides the auth mode (refusing open mode off
loopback), connects Ray (an existing cluster, a local one, or the connection this process already has),
and starts the scheduler, whose first pass resumes the studies that were queued or running when the
service last stopped. Shutdown puts this service's running studies back in the queue and closes what
startup opened.
"""

from __future__ import annotations

import errno
import gc
import importlib.util
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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
# The start-up write probe of the data directory. The empty SQLite schema takes ~150 KB and a study of a
# few hundred trials about as much again, so a disk with less room than this would fail the first study
# half-way; writing and dropping 1 MiB costs milliseconds.
DATA_DIR_PROBE_BYTES = 1 << 20
_DATA_DIR_OPTION = "--data-dir (OPTFORGE_DATA_DIR)"


class ServiceStartupError(RuntimeError):
    """The service cannot start; the message says what to fix."""


def check_data_dir(path: Path) -> None:
    """Create ``path`` if needed and write (then drop) a 1 MiB probe file in it.

    Raises ServiceStartupError, naming the directory, what is wrong and the fix, when it is a file, cannot
    be created, is not writable, or has no room (a full disk, a quota, a file-size limit). The SQLite
    database and Ray Tune's experiment state live there: finding out at start beats failing a study.
    """
    if path.exists() and not path.is_dir():
        raise ServiceStartupError(
            f"data_dir {path} is a file, not a directory: point {_DATA_DIR_OPTION} at a directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        # An unnamed file (O_TMPFILE on Linux): nothing is left behind, even if the process dies here.
        with tempfile.TemporaryFile(dir=path, prefix=".optforge-probe-") as probe:
            probe.write(b"\0" * DATA_DIR_PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())  # a full disk may only say so when the data reaches it
    except OSError as exc:
        raise ServiceStartupError(_data_dir_problem(path, exc)) from exc


def _data_dir_problem(path: Path, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (
            f"data_dir {path} has no room: writing a {DATA_DIR_PROBE_BYTES >> 20} MiB probe failed ({reason}). "
            f"It holds the database and the studies' search state: free some space there, or point "
            f"{_DATA_DIR_OPTION} at a disk with room"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return (
            f"data_dir {path} cannot be created ({reason}: a part of the path is a file): point "
            f"{_DATA_DIR_OPTION} at a directory"
        )
    return (
        f"data_dir {path} is not writable ({reason}): give the user running optforge (uid {os.getuid()}) write "
        f"access, or point {_DATA_DIR_OPTION} at a writable directory"
    )


def _open_storage(settings: Settings) -> Storage:
    """Check the data directory, then open (and migrate) the configured database."""
    check_data_dir(Path(settings.data_dir).expanduser())
    url = settings.resolved_database_url()
    try:
        return Storage.open(url)
    except (StorageError, OSError) as exc:
        where = settings.data_dir if settings.database_url is None else "the database"
        raise ServiceStartupError(
            f"cannot open the database ({type(exc).__name__}: {exc}); check that {where} is reachable and "
            "writable, with free space (set OPTFORGE_DATA_DIR or OPTFORGE_DATABASE_URL)"
        ) from exc


def start_service(settings: Settings, storage: Storage | None = None, *, run_scheduler: bool = True) -> ServiceState:
    """Open storage, check the auth mode, connect Ray and start the scheduler (blocking).

    ``run_scheduler=False`` connects no Ray and builds the scheduler without starting it, so studies stay
    queued: an API over storage alone (tests that fuzz or load the API without training anything)."""
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
        started_ray = run_scheduler and connect_ray(settings.ray_address, cpus=settings.ray_cpus)
        scheduler = Scheduler(storage, settings, database_url=database_url)
        if run_scheduler:
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
        db_limiter=anyio.CapacityLimiter(DB_THREADS),
    )


def freeze_startup_objects() -> None:
    """Move every object alive after start-up (modules, Ray, FastAPI's routes and schemas: ~300,000 objects)
    out of the garbage collector's reach, so a full collection scans only what was allocated since.

    The search stack is imported first: the first submission imports it anyway (to validate the search
    against the space), and those ~450 modules (Ray Tune, and Ray Data under it) allocated after the freeze
    made each full collection under load take ~60 ms, 3-5 a minute. Imported here, they are frozen too,
    and the first submission no longer pays for the import.

    Measured under 50 polling clients on a loaded 2-core machine: a full collection (one every few seconds)
    held the GIL, so stalled every request, for 0.35-0.9 s; with the start-up objects frozen, 45-65 ms.
    Frozen objects are still freed by reference counting; cycles among them (start-up's garbage included:
    collecting it first would cost a full collection per app start, seconds over a test session) wait
    for shutdown, which unfreezes them.
    """
    importlib.import_module("optforge.search")
    gc.freeze()


def stop_service(state: ServiceState) -> None:
    """Stop the scheduler (queueing its running studies again) and close what ``start_service`` opened."""
    state.scheduler.stop()
    state.limiter.close()
    if state.owns_storage:
        state.storage.close()
    if state.started_ray:
        ray.shutdown()


def create_app(
    settings: Settings | None = None, *, storage: Storage | None = None, run_scheduler: bool = True
) -> FastAPI:
    """The optforge service. ``storage`` (optional) is used instead of opening ``settings``' database and is
    left open at shutdown: the caller owns it. ``run_scheduler=False``: see ``start_service``."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In the event loop's own thread, not a worker thread: a local Ray started here dies with the
        # thread that started it (Linux parent-death signal), and idle worker threads exit after seconds.
        # Nothing is served before startup ends, so blocking the loop here costs nothing.
        state = start_service(settings, storage, run_scheduler=run_scheduler)
        app.state.optforge = state
        freeze_startup_objects()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(stop_service, state)
            gc.unfreeze()  # collectable again: a process that outlives the app (tests) gets its cycles back

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


__all__ = ["API_PREFIX", "ServiceStartupError", "check_data_dir", "create_app", "start_service", "stop_service"]
