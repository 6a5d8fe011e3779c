"""The service is SIGKILLed mid-study and started again: the study resumes and loses no finished trial."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.conftest import finished, tiny_spec, wait_for
from service.live import ServeProcess, kill_all, processes_with_env


def _trials(client: httpx.Client, study_id: int) -> list[dict[str, Any]]:
    return client.get(f"/api/v1/studies/{study_id}/trials").raise_for_status().json()["data"]


# Ray's per-node agents notice their raylet is gone on their own schedule (tens of seconds); they do no
# study work, so right after the kill only the processes that could still write results must be gone.
AGENTS = (b"DashboardAgent", b"RuntimeEnvAgent", b"dashboard/agent.py", b"runtime_env/agent")


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _wait_gone(marker: str, timeout: float, *, agents_too: bool = True) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in processes_with_env(marker) if agents_too or not any(a in _command(p) for a in AGENTS)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


@pytest.mark.slow
def test_a_study_resumes_after_the_service_is_killed_and_keeps_its_finished_trials(tmp_path: Path) -> None:
    marker = f"OPTFORGE_TEST_CRASH={uuid.uuid4().hex}"
    env = {
        marker.split("=")[0]: marker.split("=")[1],
        "OPTFORGE_RAY_CPUS": "2",  # Settings.ray_cpus
        # A dead service's lease expires after 5 s (the default 20 s would only make the test wait).
        "OPTFORGE_LEASE_TIMEOUT_S": "5",
        "OPTFORGE_HEARTBEAT_INTERVAL_S": "0.5",
        "OPTFORGE_SCHEDULER_INTERVAL_S": "0.3",
        "OPTFORGE_CANCEL_POLL_INTERVAL_S": "0.5",
    }
    spec = tiny_spec("crash", n_trials=6, steps=60, early_stopping="none", max_concurrent=1)
    first = ServeProcess(data_dir=tmp_path, env=env, log=tmp_path / "serve-1.log")
    second = ServeProcess(data_dir=tmp_path, env=env, log=tmp_path / "serve-2.log")
    try:
        first.start()
        with httpx.Client(base_url=first.url, timeout=30) as client:
            study_id = client.post("/api/v1/studies", json=spec).raise_for_status().json()["id"]
            study = wait_for(client, study_id, lambda s: s["progress"]["trials_finished"] >= 2 or finished(s))
            assert study["status"] == "running", f"the study ended before the kill: {study}"
            before = {t["key"]: t for t in _trials(client, study_id) if t["status"] in ("completed", "pruned")}
        first.kill()
        left = _wait_gone(marker, timeout=30, agents_too=False)
        assert left == [], f"processes outlived the killed service: {[_command(p) for p in left]}"

        second.start()
        with httpx.Client(base_url=second.url, timeout=30) as client:
            study = wait_for(client, study_id, finished, timeout=240)
            after = {t["key"]: t for t in _trials(client, study_id)}
            best = client.get(f"/api/v1/studies/{study_id}/best")
    finally:
        for serve in (first, second):
            serve.stop()
        left_after_stop = _wait_gone(marker, timeout=90)
        kill_all(left_after_stop)
    assert len(before) >= 2
    assert study["status"] == "completed", study["error"]
    assert study["resumed"] == 1
    for key, trial in before.items():  # every trial finished before the kill is still there, unchanged
        assert key in after
        kept = after[key]
        assert (kept["id"], kept["status"], kept["final"], kept["steps"]) == (
            trial["id"], trial["status"], trial["final"], trial["steps"],
        )  # fmt: skip
    done = [t for t in after.values() if t["status"] in ("completed", "pruned")]
    assert len(done) >= spec["search"]["n_trials"]  # the remaining budget ran
    assert best.status_code == 200
    assert left_after_stop == [], f"processes outlived the stopped service: {[_command(p) for p in left_after_stop]}"
