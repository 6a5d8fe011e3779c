"""Run the real service for tests: uvicorn on a free loopback port, in a thread or in a subprocess.

``LiveService`` serves ``create_app(settings)`` from a thread of the test process (sharing the test
session's Ray); ``ServeProcess`` runs ``optforge serve`` as a child process, for tests that kill it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from optforge.service import create_app
from optforge.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveService:
    """``create_app(settings)`` under uvicorn in a background thread, at ``self.url``."""

    def __init__(self, settings: Settings, *, storage: Any = None) -> None:
        self.port = free_port()
        self.settings = settings.model_copy(update={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.settings, storage=storage)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-service", daemon=True)

    def __enter__(self) -> LiveService:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start (see the log above)")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    @property
    def state(self) -> Any:
        return self.app.state.optforge

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


class ServeProcess:
    """``optforge serve`` in a child process (its own session, so it and its Ray can be killed as a group)."""

    def __init__(self, *, data_dir: Path, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "OPTFORGE_DATA_DIR": str(data_dir)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> ServeProcess:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optforge.cli", "serve", "--port", str(self.port), "--log-level", "warning"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"optforge serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.25)
        raise RuntimeError(f"optforge serve did not become ready:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the service process alone (not its group): what a crash looks like."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully (SIGINT, as Ctrl-C), then make sure nothing of its process group is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: anything it left in its group


def processes_with_env(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose environment holds ``marker`` (``NAME=value``): a test sets a
    unique one on the service it starts, and every process that service spawns (Ray's too) inherits it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if marker.encode() in environ and state != "Z":
                pids.append(int(entry.name))
    return pids


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def streaming(client: httpx.Client, path: str, **kwargs: Any) -> Iterator[Iterator[tuple[str, str, str]]]:
    """Server-sent events of ``path`` as ``(event, id, data)`` tuples."""
    with client.stream("GET", path, **kwargs) as response:
        response.raise_for_status()

        def events() -> Iterator[tuple[str, str, str]]:
            event = ident = ""
            data: list[str] = []
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield event, ident, "\n".join(data)
                    event, ident, data = "", "", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("id:"):
                    ident = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())

        yield events()
