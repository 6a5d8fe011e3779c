"""A throwaway optforge service in a subprocess, for integration tests of code that uses the SDK.

    with LocalService(allow_user_code=True) as service:   # `optforge serve` on a free loopback port
        client = service.client()                         # SQLite in a temp dir, its own local Ray
        ...
    # stopped (running studies go back to its queue), and its temporary directory deleted

The SDK side imports nothing heavy; the subprocess needs the full install (``pip install "optforge[all]"``).
It is started with ``python -m optforge.cli serve`` in its own process group, and stopped with SIGINT
(uvicorn's graceful shutdown, which also stops the Ray it started), then SIGKILL to the group if it hangs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from optforge.client._retry import NO_RETRIES
from optforge.client._sync import Client
from optforge.client.exceptions import OptforgeError

# Starting means importing torch and Ray and starting a local Ray: seconds on a laptop, more on a busy
# 2-core CI box. Two minutes is far beyond a healthy start and still ends a hung one.
STARTUP_TIMEOUT_S = 120.0
# Graceful shutdown re-queues running studies and stops Ray; beyond this the process group is killed.
SHUTDOWN_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceStartFailed(RuntimeError):
    """The service process exited or did not become ready; the message ends with its log."""


class LocalService:
    """``optforge serve`` on 127.0.0.1 with a SQLite database in ``data_dir`` (a temporary one by default).

    ``python_path``: folders added to the service's PYTHONPATH, so it (and the Ray workers it starts,
    which inherit its environment) can import user entry points. ``env``: extra environment variables
    (``OPTFORGE_*`` settings, ``OPTFORGE_RAY_CPUS``...); it starts its own local Ray unless ``env`` names a
    ``RAY_ADDRESS`` (one in this process's environment is not passed on). The log is ``data_dir/service.log``.
    """

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        port: int | None = None,
        allow_user_code: bool = False,
        python_path: Sequence[str | Path] = (),
        env: Mapping[str, str] | None = None,
        log_level: str = "warning",
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self._tmp = None if data_dir is not None else tempfile.mkdtemp(prefix="optforge-service-")
        self.data_dir = Path(data_dir or self._tmp or "").resolve()
        self.port = port or free_port()
        self.allow_user_code = allow_user_code
        self.python_path = [str(Path(p).resolve()) for p in python_path]
        self.env = dict(env or {})
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        """The service's SQLite database (e.g. for ``optforge token create --database-url``)."""
        return f"sqlite:///{self.data_dir / 'optforge.db'}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "service.log"

    def client(self, token: str | None = None, **kwargs: object) -> Client:
        """A Client of this service (close it, or use it in a ``with`` block)."""
        return Client(self.url, token, **kwargs)  # type: ignore[arg-type]

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> LocalService:
        """Start the service and block until ``/readyz`` says its database and Ray are up."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "optforge.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--log-level", self.log_level]
        command += ["--allow-user-code"] if self.allow_user_code else []
        # Its own local Ray unless told otherwise: a RAY_ADDRESS inherited from the caller (e.g. a test
        # session's Ray) would make it join a cluster it was not asked to join.
        env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, **self.env}
        paths = [*self.python_path, *filter(None, [env.get("PYTHONPATH")])]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with Client(self.url, retry=NO_RETRIES, timeout=5.0) as probe:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise ServiceStartFailed(
                        f"the service exited with code {self.process.returncode} while starting:\n{self.log_tail()}"
                    )
                with contextlib.suppress(OptforgeError):
                    if probe.ready().status == "ok":
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServiceStartFailed(
                        f"the service was not ready after {self.startup_timeout} s:\n{self.log_tail()}"
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """Stop gracefully (SIGINT), then kill the process group if it does not exit in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own group: the service and what it started
            process.wait(timeout=10)

    def close(self) -> None:
        """Stop the service and delete its temporary data directory (a given ``data_dir`` is kept)."""
        self.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
