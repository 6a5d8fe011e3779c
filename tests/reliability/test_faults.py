"""Faults done for real (issue 11): a trial's Ray worker is SIGKILLed, the service is SIGKILLed on PostgreSQL,
PostgreSQL restarts mid-study, and the data directory is a file or the disk is full.

Studies are tiny (a width-8 MLP on iris) and every wait is bounded; all traffic stays on loopback. The
service runs in this process's thread (``LiveService``, sharing the session's Ray) unless the test kills
it, in which case it is ``optforge serve`` in a child process (``ServeProcess``) with its own Ray.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from service.conftest import finished, service_settings, wait_for
from service.live import LiveService, ServeProcess, free_port, kill_all, processes_with_env
from service.test_crash_resume import _command, _trials, _wait_gone

from optforge.spec import StudyEvent, StudyEventKind, StudySpec
from optforge.storage.database import Storage
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import studies as studies_repo

# The start-up checks run before Ray starts, after the imports (seconds); beyond this the check did not stop it.
STARTUP_CHECK_TIMEOUT_S = 60


def iris_spec(name: str, *, n_trials: int, steps: int = 40, eval_every: int = 10, **search: Any) -> dict[str, Any]:
    """A study of ``n_trials`` one-at-a-time AdamW trials of a width-8 MLP on iris. No early stopping, and an LR
    range where iris never diverges: every trial ends ``completed`` and the counts below are exact."""
    return {
        "name": name,
        "task": {"model": {"name": "mlp", "width": 8, "depth": 1}, "data": {"name": "iris"}, "steps": steps,
                 "eval_every": eval_every, "batch_size": 32},
        "search": {"n_trials": n_trials, "families": ["adamw"], "schedules": ["cosine"], "warm_start": False,
                   "ranges": {"lr": [1e-3, 1e-2]}, "early_stopping": "none", "max_concurrent": 1, "top_k": 0, **search},
    }  # fmt: skip


def _curve(client: httpx.Client, study_id: int, trial_id: int) -> list[dict[str, Any]]:
    path = f"/api/v1/studies/{study_id}/trials/{trial_id}/metrics"
    return client.get(path).raise_for_status().json()["data"]


def _brief(trials: Any) -> list[tuple[Any, ...]]:
    """What a failure message needs of each trial."""
    return [(t["key"], t["status"], t["attempt"], t["steps"], (t["error"] or "")[-300:]) for t in trials]


# --- a worker dies ----------------------------------------------------------------------------------------


def _trial_workers() -> list[psutil.Process]:
    """The Ray Tune trainable actors of this test session's Ray (the raylet is this process's descendant, so
    other people's Ray clusters on the same machine are never touched)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if " ".join(child.cmdline()).startswith("ray::ImplicitFunc"):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_a_trial_whose_worker_is_sigkilled_is_retried_and_the_study_completes(
    ray_session: None, tmp_path: Path
) -> None:
    # 1000 steps (a second or more a trial) leave a window to kill the worker in mid-trial; max_retries=1 is
    # the spec's default, spelled out because it is what this test is about.
    spec = iris_spec("worker-dies", n_trials=2, steps=1000, eval_every=100, max_retries=1)
    settings = service_settings(tmp_path, f"sqlite:///{tmp_path / 'optforge.db'}")
    with LiveService(settings) as live, live.client() as client:
        study_id = client.post("/api/v1/studies", json=spec).raise_for_status().json()["id"]
        deadline = time.monotonic() + 120
        victim: dict[str, Any] | None = None
        while victim is None:  # the first trial that is running and has reported a point
            assert time.monotonic() < deadline, f"no trial started reporting: {_trials(client, study_id)}"
            running = [t for t in _trials(client, study_id) if t["status"] == "running"]
            if running and _curve(client, study_id, running[0]["id"]):
                victim = running[0]
            else:
                time.sleep(0.05)
        workers = _trial_workers()
        assert len(workers) == 1, f"expected the one trial worker of this study, found {workers}"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        study = wait_for(client, study_id, finished, timeout=180)
        trials = {t["key"]: t for t in _trials(client, study_id)}
        curve = _curve(client, study_id, trials[victim["key"]]["id"])
    assert study["status"] == "completed", study["error"]
    assert len(trials) == spec["search"]["n_trials"]
    assert all(t["status"] == "completed" for t in trials.values()), _brief(trials.values())
    retried = trials[victim["key"]]
    assert retried["attempt"] == 2, f"the killed trial was not retried: {retried}"
    assert retried["steps"] == spec["task"]["steps"]  # the second attempt ran the whole budget
    assert [p["step"] for p in curve] == list(range(100, 1001, 100))  # every evaluation is stored once
    assert all(t["attempt"] == 1 for key, t in trials.items() if key != victim["key"])


# --- the service dies (on PostgreSQL; the SQLite run is tests/service/test_crash_resume.py) -----------------


@pytest.mark.slow
@pytest.mark.postgres
def test_a_study_on_postgres_resumes_after_the_service_is_sigkilled_and_keeps_its_finished_trials(
    ray_session: None, postgres_url: str, tmp_path: Path
) -> None:
    from optforge.testing.postgres import create_database

    url = create_database(postgres_url, f"faults_{uuid.uuid4().hex[:12]}")
    marker = f"OPTFORGE_TEST_FAULT={uuid.uuid4().hex}"  # every process the killed service starts inherits it
    env = {
        marker.split("=")[0]: marker.split("=")[1],
        "OPTFORGE_DATABASE_URL": url,
        "OPTFORGE_RAY_CPUS": "2",
        "OPTFORGE_HEARTBEAT_INTERVAL_S": "0.5",
        "OPTFORGE_SCHEDULER_INTERVAL_S": "0.3",
        "OPTFORGE_CANCEL_POLL_INTERVAL_S": "0.5",
    }
    # 200 steps: long enough that the study is still running after its first trials, so the kill lands mid-study.
    spec = iris_spec("service-dies", n_trials=5, steps=200, eval_every=50)
    first = ServeProcess(data_dir=tmp_path, env=env, log=tmp_path / "serve-1.log")
    try:
        first.start()
        with httpx.Client(base_url=first.url, timeout=30) as client:
            study_id = client.post("/api/v1/studies", json=spec).raise_for_status().json()["id"]
            study = wait_for(client, study_id, lambda s: s["progress"]["trials_finished"] >= 1 or finished(s))
            before = {t["key"]: t for t in _trials(client, study_id) if t["status"] == "completed"}
        first.kill()
        assert study["status"] == "running", f"the study ended before the kill: {study}"
        stray = _wait_gone(marker, timeout=30, agents_too=False)  # nothing of the dead service writes any more
        assert stray == [], f"processes outlived the killed service: {[_command(p) for p in stray]}"
    finally:
        first.stop()
        # Ray's idle per-node agents exit on their own schedule (tens of seconds) and do no study work; they are
        # ended by pid (this test's marker is in their environment, so nobody else's processes are touched).
        kill_all(processes_with_env(marker))
    # Started again, here in this process on the session's Ray (a second Ray start would only cost time). A dead
    # service's lease expires after 5 s (the default 20 s would only make the test wait).
    with LiveService(service_settings(tmp_path, url, lease_timeout_s=5)) as second, second.client() as client:
        study = wait_for(client, study_id, finished, timeout=180)
        after = {t["key"]: t for t in _trials(client, study_id)}
    assert before, "no trial had finished before the kill"
    assert study["status"] == "completed", study["error"]
    assert study["resumed"] == 1
    for key, trial in before.items():  # the count check: every trial completed before the kill is still there
        kept = {k: after[key][k] for k in ("id", "status", "final", "steps")} if key in after else None
        assert kept == {k: trial[k] for k in ("id", "status", "final", "steps")}, key
    assert sum(t["status"] == "completed" for t in after.values()) >= spec["search"]["n_trials"]


# --- the database restarts --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_study_completes_with_every_result_when_postgres_restarts_twice_mid_study(
    ray_session: None, postgres_server: Any, tmp_path: Path
) -> None:
    from optforge.testing.postgres import create_database

    spec = iris_spec("db-restarts", n_trials=4, steps=100, eval_every=20)
    n_trials, steps, every = spec["search"]["n_trials"], spec["task"]["steps"], spec["task"]["eval_every"]
    url = create_database(postgres_server.url, f"faults_{uuid.uuid4().hex[:12]}")
    with LiveService(service_settings(tmp_path, url)) as live, live.client() as client:
        study_id = client.post("/api/v1/studies", json=spec).raise_for_status().json()["id"]
        # A clean shutdown after the first trial, then a crash (recovered from the WAL) after the second: each
        # breaks every pooled connection, the API's and the study driver's, while trials are running.
        for finished_before, mode in ((1, "fast"), (2, "immediate")):
            study = wait_for(
                client, study_id, lambda s, n=finished_before: s["progress"]["trials_finished"] >= n or finished(s)
            )
            assert study["status"] == "running" and study["progress"]["trials_finished"] < n_trials, study
            postgres_server.restart(mode=mode)
        study = wait_for(client, study_id, finished, timeout=180)
        trials = _trials(client, study_id)
        curves = {t["key"]: _curve(client, study_id, t["id"]) for t in trials}
        best = client.get(f"/api/v1/studies/{study_id}/best")
    assert study["status"] == "completed", study["error"]
    assert len(trials) == n_trials and study["progress"]["trials_finished"] == n_trials
    assert all(t["status"] == "completed" and t["steps"] == steps for t in trials), _brief(trials)
    for key, curve in curves.items():  # every evaluation of every trial reached the database
        assert [p["step"] for p in curve] == list(range(every, steps + 1, every)), key
    assert best.status_code == 200


# --- the disk fills, or the data directory is unusable ----------------------------------------------------


def _serve(data_dir: Path, *, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    """``optforge serve --data-dir data_dir``, optionally with a file-size limit (``RLIMIT_FSIZE``: every write
    past it fails with EFBIG, as on a full disk, and root is not exempt). A service that starts anyway (the
    check regressed) is killed with its whole process group, Ray included, after the timeout."""

    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    command = [sys.executable, "-m", "optforge.cli", "serve", "--data-dir", str(data_dir), "--port", str(free_port())]
    process = subprocess.Popen(
        command, preexec_fn=limit, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=STARTUP_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"optforge serve started on a data dir it cannot use:\n{err[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _a_file(tmp: Path) -> Path:
    path = tmp / "not-a-directory"
    path.write_text("a regular file")
    return path


@pytest.mark.parametrize(
    ("data_dir", "fix"),
    [(_a_file, "is a file, not a directory"), (lambda tmp: _a_file(tmp) / "optforge", "a part of the path is a file")],
    ids=["a-file", "under-a-file"],
)
def test_serve_refuses_to_start_on_a_data_dir_that_cannot_be_a_directory(
    tmp_path: Path, data_dir: Any, fix: str
) -> None:
    where = data_dir(tmp_path)
    done = _serve(where)
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert f"data_dir {where}" in message and fix in message and "--data-dir" in message, message
    assert "Traceback" not in done.stderr


def test_serve_refuses_to_start_on_a_full_disk_and_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    spec = StudySpec.model_validate(iris_spec("kept", n_trials=2))
    with Storage.open(f"sqlite:///{tmp_path / 'optforge.db'}") as storage, storage.session() as session:
        study_id = studies_repo.create_study(session, spec=spec).id
    size = (tmp_path / "optforge.db").stat().st_size
    done = _serve(tmp_path, max_file_bytes=size + 4096)  # the database fits; a study's results would not
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert f"data_dir {tmp_path} has no room" in message and "free some space" in message, message
    assert "Traceback" not in done.stderr
    with Storage.open(f"sqlite:///{tmp_path / 'optforge.db'}") as storage, storage.session(readonly=True) as session:
        assert studies_repo.get_study(session, study_id=study_id).name == "kept"
    assert _integrity(tmp_path / "optforge.db") == "ok"


# Run in a child process under RLIMIT_FSIZE: one unit of work that outgrows the limit (1 MB of events).
_FILL = textwrap.dedent(
    """
    import sys
    from optforge.spec import StudyEvent, StudyEventKind
    from optforge.storage.database import Storage
    from optforge.storage.repo import events

    with Storage.open(sys.argv[1], migrate=False) as storage:
        try:
            with storage.session() as session:
                for i in range(100):
                    event = StudyEvent(kind=StudyEventKind.PHASE, data={"i": i, "blob": "x" * 10_000})
                    events.append_event(session, study_id=int(sys.argv[2]), event=event)
        except Exception as exc:
            print(type(exc).__name__, exc)
            sys.exit(3)
    """
)


def test_a_write_that_fills_the_disk_fails_cleanly_and_keeps_what_was_committed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optforge.db'}"
    with Storage.open(url) as storage, storage.session() as session:
        study_id = studies_repo.create_study(session, spec=StudySpec.model_validate(iris_spec("kept", n_trials=2))).id
        events_repo.append_event(session, study_id=study_id, event=StudyEvent(kind=StudyEventKind.STARTED))
    limit = (tmp_path / "optforge.db").stat().st_size + 64 * 1024

    def fill_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-c", _FILL, url, str(study_id)],
        preexec_fn=fill_limit, capture_output=True, text=True, timeout=STARTUP_CHECK_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert done.stdout.startswith("StorageUnavailable"), done.stdout  # the transient error, not a crash
    assert _integrity(tmp_path / "optforge.db") == "ok"
    with Storage.open(url) as storage, storage.session() as session:
        kinds = [e.kind for e in events_repo.list_events(session, study_id=study_id)]
        assert kinds == [StudyEventKind.STARTED]  # the failed unit of work left nothing half-written
        events_repo.append_event(session, study_id=study_id, event=StudyEvent(kind=StudyEventKind.FINISHED))


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
