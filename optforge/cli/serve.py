"""``optforge serve``: run the service (FastAPI under uvicorn) with SQLite and a local Ray by default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from optforge.cli._errors import err_console

BAD_SETUP = 2


def settings_from_options(**options: Any) -> Any:
    """``Settings`` from the environment, with the options the user gave on the command line on top."""
    from optforge.settings import Settings

    return Settings(**{k: v for k, v in options.items() if v is not None})


def open_checked(settings: Any) -> Any:
    """The service's storage, after the checks that must pass before anything listens: the database opens
    and migrates, and open mode (no tokens) is only allowed on loopback. Exits 2 with the fix otherwise."""
    from optforge.service.app import ServiceStartupError, _open_storage
    from optforge.service.auth import Authenticator, OpenModeRefused

    try:
        storage = _open_storage(settings)
    except ServiceStartupError as exc:
        err_console.print(f"[bold red]error[/]: {exc}", soft_wrap=True)
        raise typer.Exit(BAD_SETUP) from None
    try:
        Authenticator(storage, host=settings.host).check_startup(announce=False)
    except OpenModeRefused as exc:
        storage.close()
        err_console.print(f"[bold red]refusing to start[/]: {exc}", soft_wrap=True)
        raise typer.Exit(BAD_SETUP) from None
    return storage


def run_server(settings: Any, storage: Any, *, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop it gracefully: running studies go back to the queue)."""
    import uvicorn

    from optforge.service import create_app

    app = create_app(settings, storage=storage)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, access_log=False)
    finally:
        storage.close()


def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default 127.0.0.1; others need tokens)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (default 8000)")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db (default: SQLite)")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where SQLite, checkpoints and user datasets live")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="an existing Ray cluster (default: start a local Ray)")
    ] = None,
    allow_user_code: Annotated[
        bool, typer.Option("--allow-user-code", help="accept specs whose model or data is the user's own code")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the optforge service: the REST API under /api/v1, its docs at /docs, the status page at /."""
    import logging

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_options(
        host=host,
        port=port,
        database_url=database_url,
        data_dir=data_dir,
        ray_address=ray_address,
        allow_user_code=True if allow_user_code else None,
    )
    storage = open_checked(settings)
    run_server(settings, storage, log_level=log_level)
