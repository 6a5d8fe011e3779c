"""Fixtures of the status-page tests: one real service (open mode, SQLite, the session's Ray) with real
tiny studies, and a real headless Chromium driven by Playwright.

Chromium is the distribution's (``/usr/bin/chromium``, installed by scripts/install-system-deps.sh), never
a browser Playwright downloads. Without it the browser tests skip, unless ``OPTFORGE_REQUIRE_BROWSER=1``
(CI), where they fail. Screenshots go to ``$OPTFORGE_SCREENSHOT_DIR`` (default ``artifacts/screenshots``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from service.live import LiveService

from optforge.settings import Settings
from optforge.storage.database import Storage
from optforge.storage.repo import users as users_repo

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15's CSS viewport


def web_spec(name: str, *, n_trials: int, steps: int, families: list[str], **search: Any) -> dict[str, Any]:
    """A tiny study: a width-16 MLP on digits, evaluated every 10 steps."""
    return {
        "name": name,
        "task": {"model": {"name": "mlp", "width": 16, "depth": 1}, "data": {"name": "digits"}, "steps": steps,
                 "eval_every": 10, "batch_size": 32},
        "search": {"n_trials": n_trials, "families": families, "schedules": ["cosine"], "warm_start": False,
                   "max_concurrent": 2, **search},
    }  # fmt: skip


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    # Short intervals: the tests wait on them. Two studies at once, both the anonymous owner's.
    return Settings(
        data_dir=tmp, database_url=f"sqlite:///{tmp / 'optforge.db'}", scheduler_interval_s=0.3,
        cancel_poll_interval_s=0.3, heartbeat_interval_s=1.0, stream_poll_interval_s=0.2,
        max_running_studies=2, max_running_studies_per_user=2, **overrides,
    )  # fmt: skip


@dataclass
class WebService:
    live: LiveService
    storage: Storage

    @property
    def url(self) -> str:
        return self.live.url

    def client(self, token: str | None = None) -> httpx.Client:
        return self.live.client(token)

    def submit(self, spec: dict[str, Any], token: str | None = None) -> int:
        with self.client(token) as client:
            return client.post("/api/v1/studies", json=spec).raise_for_status().json()["id"]

    def study(self, study_id: int, token: str | None = None) -> dict[str, Any]:
        with self.client(token) as client:
            return client.get(f"/api/v1/studies/{study_id}").raise_for_status().json()

    def trials(self, study_id: int) -> list[dict[str, Any]]:
        """The study's trials with their curves, as the page reads them."""
        with self.client() as client:
            return client.get(f"/web-api/studies/{study_id}/curves").raise_for_status().json()["trials"]

    def wait(self, study_id: int, predicate: Callable[[dict], bool], *, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        study: dict[str, Any] = {}
        while time.monotonic() < deadline:
            study = self.study(study_id)
            if predicate(study):
                return study
            time.sleep(0.3)
        raise AssertionError(f"study {study_id} did not get there in {timeout} s; last seen: {study}")


def finished(study: dict[str, Any]) -> bool:
    return study["status"] in ("completed", "failed", "cancelled")


@pytest.fixture(scope="package")
def web_service(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebService]:
    """The service in open mode (no tokens, loopback) on a fresh SQLite database."""
    tmp = tmp_path_factory.mktemp("web")
    storage = Storage.open(f"sqlite:///{tmp / 'optforge.db'}")
    with LiveService(settings_for(tmp), storage=storage) as live:
        yield WebService(live=live, storage=storage)
    storage.close()


@pytest.fixture(scope="package")
def completed_study(web_service: WebService) -> int:
    """A completed study of three families. No early stopping: every trial runs its whole budget, so each
    panel of the page has enough completed trials."""
    spec = web_spec("compare-families", n_trials=6, steps=60, families=["adamw", "lion", "sgd"], early_stopping="none")
    study = web_service.wait(web_service.submit(spec), finished)
    assert study["status"] == "completed", study
    return study["id"]


@dataclass
class TokenService:
    live: LiveService
    storage: Storage
    alice: str
    bob: str


@pytest.fixture(scope="package")
def token_service(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenService]:
    """A service that requires API tokens, with two users' tokens."""
    tmp = tmp_path_factory.mktemp("web-token")
    storage = Storage.open(f"sqlite:///{tmp / 'optforge.db'}")
    tokens = {}
    with storage.session() as session:
        for name in ("alice", "bob"):
            user = users_repo.create_user(session, name=name)
            tokens[name] = users_repo.issue_token(session, user_id=user.id).token
    with LiveService(settings_for(tmp), storage=storage) as live:
        yield TokenService(live=live, storage=storage, **tokens)
    storage.close()


# ---- the browser -----------------------------------------------------------------------------------------


def chromium_path() -> str | None:
    configured = os.environ.get("OPTFORGE_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """A headless system Chromium under Playwright (skipped, or failed under OPTFORGE_REQUIRE_BROWSER=1, without one)."""
    required = os.environ.get("OPTFORGE_REQUIRE_BROWSER") == "1"
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if required:
            pytest.fail(f"OPTFORGE_REQUIRE_BROWSER=1 but Playwright is not installed: {exc}")
        pytest.skip("Playwright is not installed (pip install -e '.[test]')")
    if path is None:
        reason = "no Chromium found (run scripts/install-system-deps.sh, or set OPTFORGE_CHROMIUM)"
        if required:
            pytest.fail(f"OPTFORGE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class Console:
    """What the page logged: console errors and uncaught exceptions (either fails a test)."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., tuple[Any, Console]]]:
    """``open_page(url, viewport=DESKTOP)``: a fresh browser context's page at ``url``, with its console."""
    contexts = []

    def open_(
        url: str, *, viewport: dict[str, int] = DESKTOP, storage: dict[str, str] | None = None
    ) -> tuple[Any, Console]:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        if storage:  # localStorage entries, set before any page script runs
            script = "".join(f"localStorage.setItem({k!r}, {v!r});" for k, v in storage.items())
            context.add_init_script(script)
        page = context.new_page()
        console = Console()
        page.on("console", lambda msg: msg.type == "error" and console.errors.append(msg.text))
        page.on("pageerror", lambda exc: console.errors.append(f"uncaught: {exc}"))
        page.goto(url)
        return page, console

    yield open_
    for context in contexts:  # closes the pages and their live streams before the service stops
        context.close()


def screenshot_dir() -> Path:
    path = Path(os.environ.get("OPTFORGE_SCREENSHOT_DIR", "artifacts/screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of ``page`` as ``<screenshot dir>/<name>.png``."""
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def series_points(page: Any, chart_id: str) -> list[int]:
    """The number of data points of each series of the ECharts chart in ``#chart_id``, read from the instance."""
    return page.evaluate(
        """(id) => {
            const chart = echarts.getInstanceByDom(document.getElementById(id));
            return chart ? chart.getOption().series.map((s) => (s.data || []).length) : [];
        }""",
        chart_id,
    )
