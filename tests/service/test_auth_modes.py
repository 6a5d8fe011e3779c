"""Open mode (no tokens, loopback only), refusing to start open on other addresses, and user code."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from optforge.service.app import start_service
from optforge.service.auth import OpenModeRefused, is_loopback
from optforge.storage.database import Storage
from service.conftest import issue, service_settings, tiny_spec
from service.live import LiveService


@pytest.fixture
def open_service(ray_session: None, tmp_path: Path) -> Iterator[tuple[LiveService, Storage]]:
    url = f"sqlite:///{tmp_path / 'open.db'}"
    storage = Storage.open(url)
    with LiveService(service_settings(tmp_path, url, allow_user_code=True), storage=storage) as live:
        yield live, storage
    storage.close()


def test_with_no_tokens_on_loopback_the_service_runs_open_and_says_so(
    open_service: tuple[LiveService, Storage], caplog: pytest.LogCaptureFixture
) -> None:
    live, _ = open_service
    with live.client(None) as client:
        assert client.get("/healthz").json()["auth"] == "open"
        assert client.get("/api/v1/studies").status_code == 200
        assert client.get("/api/v1/families").status_code == 200


def test_creating_the_first_token_switches_a_running_open_service_to_tokens(
    open_service: tuple[LiveService, Storage],
) -> None:
    live, storage = open_service
    token = issue(storage, "first")
    deadline = time.monotonic() + live.settings.auth_cache_s + 10
    with live.client(None) as anonymous, live.client(token) as holder:
        while anonymous.get("/api/v1/studies").status_code == 200:
            assert time.monotonic() < deadline, "still open 15 s after the first token was created"
            time.sleep(0.5)
        assert anonymous.get("/api/v1/studies").status_code == 401
        assert holder.get("/api/v1/studies").status_code == 200


def test_user_code_is_accepted_when_the_server_allows_it(open_service: tuple[LiveService, Storage]) -> None:
    live, _ = open_service
    spec = tiny_spec("user-code")
    spec["task"]["model"] = {"entrypoint": "torch.nn:Identity", "width": 16}
    with live.client(None) as client:
        response = client.post("/api/v1/studies", json=spec)
        assert response.status_code == 201, response.text
        client.delete(f"/api/v1/studies/{response.json()['id']}")


def test_with_no_tokens_the_service_refuses_to_start_beyond_loopback(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", host="0.0.0.0")
    with pytest.raises(OpenModeRefused, match="optforge token create"):
        start_service(settings)


def test_optforge_serve_refuses_to_start_open_beyond_loopback_with_a_clear_message(tmp_path: Path) -> None:
    env = {"OPTFORGE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "optforge.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to start" in done.stderr and "optforge token create" in done.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("192.168.1.10", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_is_recognized(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
