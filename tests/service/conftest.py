"""Fixtures of the service tests: a real service over HTTP, on SQLite and again on PostgreSQL.

Studies are tiny (a width-16 MLP on digits, 40 steps, 4 trials) so that a whole one takes seconds on a
2-core machine; Ray is the test session's (``ray_session``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from optforge.settings import Settings
from optforge.storage.database import Storage
from optforge.storage.repo import users as users_repo
from service.live import LiveService

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def tiny_spec(name: str = "tiny", *, n_trials: int = 4, steps: int = 40, **search: Any) -> dict[str, Any]:
    """A study that finishes in seconds: a width-16 MLP on digits, two families."""
    return {
        "name": name,
        "task": {"model": {"name": "mlp", "width": 16, "depth": 1}, "data": {"name": "digits"}, "steps": steps,
                 "eval_every": 10, "batch_size": 32},
        "search": {"n_trials": n_trials, "families": ["adamw", "lion"], "schedules": ["cosine"], "warm_start": False,
                   **search},
    }  # fmt: skip


def database_url(backend: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    """A fresh, empty database of ``backend``: its own SQLite file, or its own database on the session's server."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'optforge.db'}"
    from optforge.testing.postgres import create_database

    server_url = request.getfixturevalue("postgres_url")
    return create_database(server_url, f"service_{uuid.uuid4().hex[:12]}")


@dataclass
class Tokens:
    alice: str
    bob: str
    admin: str


def issue(storage: Storage, user: str, *, admin: bool = False) -> str:
    """A token for ``user`` (created with it)."""
    with storage.session() as session:
        record = users_repo.create_user(session, name=user, is_admin=admin)
        return users_repo.issue_token(session, user_id=record.id).token


@dataclass
class Service:
    live: LiveService
    storage: Storage
    tokens: Tokens
    backend: str

    def client(self, token: str | None) -> httpx.Client:
        return self.live.client(token)


def service_settings(tmp: Path, url: str, **overrides: Any) -> Settings:
    # Short intervals: a test waits on these, a production service would not care.
    return Settings(
        data_dir=tmp, database_url=url, scheduler_interval_s=0.3, cancel_poll_interval_s=0.3,
        heartbeat_interval_s=1.0, stream_poll_interval_s=0.2, auth_cache_s=0.5, **overrides,
    )  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, ray_session: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A token-mode service (users alice, bob and an admin), on SQLite or PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"service-{request.param}")
    url = database_url(request.param, request, tmp)
    storage = Storage.open(url)
    tokens = Tokens(alice=issue(storage, "alice"), bob=issue(storage, "bob"), admin=issue(storage, "root", admin=True))
    # Each owner runs one study at a time; two owners at once keep both CPUs busy.
    settings = service_settings(
        tmp, url, max_running_studies=2, max_active_studies_per_user=3, rate_limit_burst=20, max_trials=50,
        max_steps=60_000, max_width=256,
    )  # fmt: skip
    with LiveService(settings, storage=storage) as live:
        yield Service(live=live, storage=storage, tokens=tokens, backend=request.param)
    storage.close()


def wait_for(client: httpx.Client, study_id: int, predicate: Any, *, timeout: float = 120) -> dict[str, Any]:
    """Poll the study until ``predicate(study)`` holds; fail with its last state after ``timeout``."""
    deadline = time.monotonic() + timeout
    study: dict[str, Any] = {}
    while time.monotonic() < deadline:
        study = client.get(f"/api/v1/studies/{study_id}").raise_for_status().json()
        if predicate(study):
            return study
        time.sleep(0.2)
    raise AssertionError(f"study {study_id} did not get there in {timeout} s; last seen: {study}")


def finished(study: dict[str, Any]) -> bool:
    return study["status"] in ("completed", "failed", "cancelled")
