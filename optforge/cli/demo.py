"""``optforge demo``: the service with SQLite and a local Ray, running a small demo study you can watch.

It starts the service (as ``optforge serve`` would), submits a study (an MLP on scikit-learn's digits,
four optimizer families, 16 short trials), prints where to watch it and its progress until it finishes,
then the best configuration as PyTorch code, and keeps serving until Ctrl-C.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

DEMO_STUDY: dict[str, Any] = {
    "name": "demo-digits-mlp",
    "task": {
        "model": {"name": "mlp", "width": 64, "depth": 2},
        "data": {"name": "digits"},
        "batch_size": 64,
        "steps": 200,  # a few seconds per trial on one CPU core
        "eval_every": 20,
    },
    "search": {"n_trials": 16, "families": ["adamw", "lion", "sgd", "muon"], "schedules": ["cosine", "wsd"]},
}


def _demo_token(storage: Any) -> str | None:
    """None in open mode; else a token for a ``demo`` user (the server requires one when tokens exist)."""
    from optforge.service.auth import count_active_tokens
    from optforge.storage.errors import NotFound
    from optforge.storage.repo import users as users_repo

    if count_active_tokens(storage) == 0:
        return None
    with storage.session() as session:
        try:
            user = users_repo.get_user_by_name(session, name="demo")
        except NotFound:
            user = users_repo.create_user(session, name="demo")
        return users_repo.issue_token(session, user_id=user.id, name="optforge demo").token


def _watch(console: Console, client: Any, study_id: int) -> dict[str, Any]:
    """Print a line whenever the study's progress or best changes; return the finished study."""
    last = None
    while True:
        study = client.get(f"/api/v1/studies/{study_id}").raise_for_status().json()
        progress, best = study["progress"], study["best"]
        line = f"{study['status']:<9} trials {progress['trials_finished']:>2}/{progress['trials_total']}"
        if best:
            line += f"  best {best['metric']} {best['value']:.4f} ({best['family']} + {best['schedule']})"
        if line != last:
            console.print(f"[dim]{time.strftime('%H:%M:%S')}[/]  {line}")
            last = line
        if study["status"] in ("completed", "failed", "cancelled"):
            return study
        time.sleep(1.0)


def demo(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="where SQLite and Ray Tune's files go")] = None,
) -> None:
    """Start optforge (SQLite + local Ray), run a demo study, show its progress and best configuration."""
    import logging

    import httpx
    import uvicorn

    from optforge.cli.serve import open_checked, settings_from_options
    from optforge.service import create_app

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(highlight=False, soft_wrap=True)  # soft wrap: the printed code stays pasteable
    settings = settings_from_options(host="127.0.0.1", port=port, data_dir=data_dir)
    storage = open_checked(settings)
    token = _demo_token(storage)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, storage=storage), host=settings.host, port=port,
                                           log_level="warning", access_log=False))  # fmt: skip
    # The server (and the local Ray it starts) lives in this thread until Ctrl-C; the main thread watches.
    thread = threading.Thread(target=server.run, name="optforge-server", daemon=True)
    url = f"http://{settings.host}:{port}"
    console.print(f"starting optforge at [bold]{url}[/] (database {storage.url}, a local Ray)…")
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise typer.Exit(1)
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            study = client.post("/api/v1/studies", json=DEMO_STUDY).raise_for_status().json()
            console.print(
                f"demo study {study['id']} submitted: {DEMO_STUDY['search']['n_trials']} trials over "
                f"{', '.join(DEMO_STUDY['search']['families'])}\n"
                f"  status page  {url}/\n  API          {url}/api/v1/studies/{study['id']}\n  docs         {url}/docs"
            )
            final = _watch(console, client, study["id"])
            if final["status"] == "completed":
                best = client.get(f"/api/v1/studies/{study['id']}/best").raise_for_status().json()
                console.print("\n[bold]best configuration[/] as PyTorch code:\n")
                console.print(best["snippet"], markup=False)
            else:
                console.print(f"[bold red]the demo study {final['status']}[/]: {final.get('error') or ''}")
        console.print(f"optforge keeps serving at [bold]{url}[/]; press Ctrl-C to stop.")
        while thread.is_alive():
            thread.join(timeout=1.0)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        storage.close()
