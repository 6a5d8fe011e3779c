"""A real multi-node Ray cluster on this machine, every process of it outside the test process.

    with LocalRayCluster() as cluster:                       # `ray start --head --block` in a temp dir
        cluster.add_node(resources={"optforge_test_node": 4})  # `ray start --address ... --block`
        nodes = cluster.nodes()                              # ray.nodes(), read by a short-lived subprocess
    # every node stopped: SIGTERM to each `ray start`, then SIGKILL to anything left in its session

Each `ray start --block` runs in its own session (``start_new_session``), so what it started (GCS, raylet,
workers) can be found and ended by session id. ``ray stop`` is never used: it stops every Ray on the
machine, including other tests' and other users'. Every port is chosen free, so clusters do not collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from optforge.client.testing import free_port

RAY = str(Path(sys.executable).with_name("ray"))
# Starting a node on a busy 2-core machine takes 10-30 s; a minute means it is not coming.
NODE_START_TIMEOUT_S = 90.0
# `ray start --block` stops its processes on SIGTERM within seconds; after this they are killed.
NODE_STOP_TIMEOUT_S = 20.0
# The smallest object store Ray accepts is 75 MB; 100 MB holds the digits dataset many times over and
# keeps a test cluster from claiming 30 % of the machine's memory (Ray's default).
OBJECT_STORE_BYTES = 100_000_000

# Reads the cluster's live nodes once `want` of them are alive; prints them as JSON.
_NODES_PROBE = textwrap.dedent(
    """
    import json, sys, time
    import ray
    ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
    deadline = time.monotonic() + float(sys.argv[3])
    while True:
        alive = [n for n in ray.nodes() if n.get("Alive")]
        if len(alive) >= int(sys.argv[2]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(json.dumps([{"node_id": n["NodeID"], "resources": n["Resources"]} for n in alive]))
    """
)


def _session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (from /proc; empty where /proc has no such view)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


class LocalRayCluster:
    """A head node (``num_cpus`` CPUs) plus the nodes ``add_node`` starts, all on 127.0.0.1."""

    def __init__(self, *, num_cpus: int = 1) -> None:
        self.num_cpus = num_cpus
        self.port = free_port()
        # Ray puts unix sockets under its temp dir, and those paths are limited to ~107 bytes: keep it short.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ofc-", dir="/tmp"))
        self.processes: list[subprocess.Popen[bytes]] = []
        # Ray >= 2.5x enables token authentication by default and keeps the token in ~/.ray/auth_token,
        # shared by every Ray of this user. The cluster's own token, in the environment of each of its
        # processes (and of the service joining it: ``ray_env``), keeps it apart from any other Ray here.
        self.ray_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
        self.env = inherited | self.ray_env | {"RAY_USAGE_STATS_ENABLED": "0"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What a process joining this cluster needs in its environment: ``RAY_ADDRESS`` and the auth token."""
        return {"RAY_ADDRESS": self.address, **self.ray_env}

    def start(self) -> LocalRayCluster:
        """Start the head and wait until it accepts connections; on failure nothing is left behind."""
        try:
            self._start_node("head", ["--head", f"--port={self.port}", "--include-dashboard=false"], cpus=self.num_cpus)
            self._wait_for_port()
        except BaseException:
            self.close()  # `with` calls __exit__ only once __enter__ returned
            raise
        return self

    def add_node(self, *, num_cpus: int = 1, resources: dict[str, float] | None = None) -> None:
        """Start one more node joining the head; ``resources``: Ray custom resources it offers."""
        extra = [f"--address={self.address}"]
        if resources:
            extra.append(f"--resources={json.dumps(resources)}")
        self._start_node(f"node{len(self.processes)}", extra, cpus=num_cpus)

    def nodes(self, *, want: int = 1, timeout: float = NODE_START_TIMEOUT_S) -> list[dict[str, Any]]:
        """The live nodes (``node_id``, ``resources``), once ``want`` are alive or ``timeout`` passed."""
        out = subprocess.run(
            [sys.executable, "-c", _NODES_PROBE, self.address, str(want), str(timeout)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout + 60,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"could not read the cluster's nodes:\n{out.stderr[-3000:]}\n{self.log_tail()}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {log.name}:\n{log.read_text(errors='replace')[-chars:]}"
            for log in sorted(self.temp_dir.glob("*.log"))
        )

    def _start_node(self, name: str, extra: list[str], *, cpus: int) -> None:
        ports = {
            flag: free_port()
            for flag in (
                "node-manager-port",
                "object-manager-port",
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
            )
        }
        command = [RAY, "start", "--block", *extra, f"--num-cpus={cpus}", "--num-gpus=0"]
        command += ["--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}", "--disable-usage-stats"]
        command += [f"--object-store-memory={OBJECT_STORE_BYTES}"]
        command += [f"--{flag}={port}" for flag, port in ports.items()]
        with (self.temp_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        self.processes.append(process)

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            head = self.processes[0]
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start:\n{self.log_tail()}")
            time.sleep(0.5)

    def leftover_processes(self) -> list[int]:
        """Processes still alive in the nodes' sessions (empty once ``stop`` has run)."""
        return [pid for process in self.processes for pid in _session_members(process.pid)]

    def stop(self) -> None:
        """Stop the nodes, the head last, and kill whatever of theirs is still alive."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=NODE_STOP_TIMEOUT_S)
        for process in self.processes:
            for pid in _session_members(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
