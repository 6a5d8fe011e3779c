"""The scheduler: a queue of studies kept in the database, each run by a Ray actor, never in this process.

One thread per service wakes every ``scheduler_interval_s`` (at once after a submission) and:

1. **reaps** drivers that ended. A driver that returned already wrote its study's final status. A driver
   whose actor died (a killed worker, a lost node) gives its study back to the queue, so the next pass
   resumes it; after ``max_study_attempts`` claims the study is marked failed instead.
2. **enforces cancels**: a running study whose cancel flag is set is stopped by its driver within
   ``cancel_poll_interval_s``; if the driver has not finished ``CANCEL_GRACE_S`` later, its actor is
   killed and the study is marked cancelled here.
3. **claims** queued studies (or running ones whose lease expired: their service died) while fewer than
   ``max_running_studies`` run here, at most ``max_running_studies_per_user`` per owner, oldest first,
   and starts a driver for each.

The lease: a claimed study carries this scheduler's worker id; its driver renews the heartbeat. When the
service dies its actors die with it (they are owned by this process), the heartbeat stops, and once it
is ``lease_timeout_s`` old the next service to start claims the study and resumes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray
from ray._raylet import PlacementGroupID
from ray.exceptions import RayActorError, RayTaskError
from ray.util.placement_group import PlacementGroup

from optforge.service.driver import DriverOptions, StudyDriver
from optforge.service.meta_jobs import MetaJobs
from optforge.settings import Settings
from optforge.spec import StudyEvent, StudyEventKind, StudyStatus
from optforge.storage.database import Storage
from optforge.storage.errors import Conflict, LeaseLost, NotFound, StorageError
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import studies as studies_repo
from optforge.storage.repo import trials as trials_repo

log = logging.getLogger("optforge.service")

# How long a driver has to stop after its study's cancel flag was seen, before its actor is killed.
# Tune tears trials down within about a second; 10 s leaves room for a slow checkpoint write.
CANCEL_GRACE_S = 10.0
# How long drivers have to wind down when the service stops, before they are killed.
STOP_GRACE_S = 20.0


@dataclass
class _Run:
    study_id: int
    actor: Any
    ref: Any
    attempt: int
    started: float = field(default_factory=time.monotonic)
    last_beat: float = field(default_factory=time.monotonic)
    cancel_seen: float | None = None


def finish_without_driver(
    storage: Storage, study_id: int, status: StudyStatus, *, worker: str | None, error: str | None = None
) -> None:
    """End a study whose driver cannot: mark its unfinished trials cancelled, set ``status``, log ``finished``."""
    with storage.session() as session:
        trials_repo.cancel_unfinished_trials(session, study_id=study_id, error=error)
        study = studies_repo.set_study_status(session, study_id=study_id, status=status, error=error, worker=worker)
        events_repo.append_event(
            session,
            study_id=study_id,
            event=StudyEvent(kind=StudyEventKind.FINISHED, data={"status": status.value, "error": error}),
        )
    log.info("study %s %s%s", study_id, study.status.value, f": {error}" if error else "")


class Scheduler:
    """Claims queued studies and runs each on a Ray actor; see the module docstring for one pass."""

    def __init__(self, storage: Storage, settings: Settings, *, database_url: str) -> None:
        self.storage = storage
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._options = DriverOptions(
            database_url=database_url,
            worker=self.worker,
            data_dir=str(settings.data_dir),
            heartbeat_interval_s=settings.heartbeat_interval_s,
            cancel_poll_interval_s=settings.cancel_poll_interval_s,
            allow_user_code=settings.allow_user_code,
        )
        self._runs: dict[int, _Run] = {}
        self.meta_jobs = MetaJobs(storage, settings, self._options)  # meta-training runs (service/meta_jobs.py)
        self._leaked = False  # a driver was killed or died: its Tune placement groups may still hold resources
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduling thread. Its first pass resumes whatever was queued or left running."""
        self._thread = threading.Thread(target=self._loop, name="optforge-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; ask this service's drivers to wind down and give their studies back to the queue,
        so the next start resumes them at once instead of waiting for their leases to expire."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.meta_jobs.stop()
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            with contextlib.suppress(Exception):
                run.actor.stop.remote()
        if runs:
            ray.wait([r.ref for r in runs], num_returns=len(runs), timeout=STOP_GRACE_S)
        for run in runs:
            ready, _ = ray.wait([run.ref], timeout=0)
            if ready:
                continue
            _kill(run.actor)
            try:
                with self.storage.session() as session:
                    study = studies_repo.get_study(session, study_id=run.study_id)
                    if study.cancel_requested:  # a cancel the driver had no time to finish
                        pass
                    else:
                        studies_repo.release_study(session, study_id=run.study_id, worker=self.worker)
                        log.info("study %s put back in the queue (service stopping)", run.study_id)
                        continue
                finish_without_driver(self.storage, run.study_id, StudyStatus.CANCELLED, worker=self.worker)
            except Conflict:  # it finished (or was taken over) before its driver stopped
                pass
            except StorageError as exc:
                log.warning("could not put study %s back in the queue: %s", run.study_id, exc)

    def wake(self) -> None:
        """Run a pass now (after a submission or a cancel) instead of at the next interval."""
        self._wake.set()

    def running_ids(self) -> list[int]:
        with self._lock:
            return list(self._runs)

    def abandon(self, study_id: int) -> None:
        """Ask the study's driver to stop at once, if this service runs it (its study is being deleted)."""
        with self._lock:
            run = self._runs.get(study_id)
        if run is not None:
            with contextlib.suppress(Exception):
                run.actor.stop.remote()

    # ---- the loop ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive a database outage; the next pass retries
                log.exception("scheduler pass failed; retrying in %.1f s", self.settings.scheduler_interval_s)
            self._wake.wait(self.settings.scheduler_interval_s)
            self._wake.clear()

    def tick(self) -> None:
        """One pass: reap, renew leases, enforce cancels, claim."""
        self._reap()
        self._sweep_placement_groups()
        self._renew()
        self._enforce_cancels()
        if not self._stop.is_set():
            self._claim()
        self.meta_jobs.tick(claim=not self._stop.is_set())

    def _sweep_placement_groups(self) -> None:
        """Remove the placement groups a killed driver left behind, once no driver of this service runs.

        Ray removes an actor's placement groups only with its job (this service process), not when the actor
        dies; every placement group of this job was made by a driver's Tune, so with none running, none is
        in use.
        """
        if not self._leaked or self._runs:
            return
        job = ray.get_runtime_context().get_job_id()
        for pg_id, info in ray.util.placement_group_table().items():
            if pg_id.endswith(job) and info.get("state") != "REMOVED":
                with contextlib.suppress(Exception):
                    ray.util.remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(pg_id)))
        self._leaked = False

    def _renew(self) -> None:
        """Renew the lease of every study whose driver is alive. The service renews, not only the driver:
        drivers run in niced Ray workers, and a starved driver must not lose its study to this very service."""
        with self._lock:
            runs = list(self._runs.values())
        now = time.monotonic()
        for run in runs:
            if now - run.last_beat < self.settings.heartbeat_interval_s:
                continue
            try:
                with self.storage.session() as session:
                    studies_repo.heartbeat(session, study_id=run.study_id, worker=self.worker)
                run.last_beat = now
            except (LeaseLost, NotFound):  # finished (reaped next pass), deleted, or taken over elsewhere
                pass

    def _reap(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        if not runs:
            return
        ready, _ = ray.wait([r.ref for r in runs], num_returns=len(runs), timeout=0)
        done = {id(ref) for ref in ready}
        for run in runs:
            if id(run.ref) not in done:
                continue
            with self._lock:
                self._runs.pop(run.study_id, None)
            try:
                status = ray.get(run.ref)
                log.info("study %s driver ended: %s", run.study_id, status)
            except RayTaskError as exc:  # the driver itself raised: a bug or a bad spec, not worth a retry
                self._fail(run, f"the study driver raised: {exc.cause!r}" if exc.cause else str(exc))
            except RayActorError as exc:
                self._lost(run, exc)
            except Exception as exc:
                self._lost(run, exc)

    def _lost(self, run: _Run, exc: BaseException) -> None:
        """The driver's actor died. Queue the study again (it resumes), or fail it after too many attempts."""
        self._leaked = True
        reason = f"the study driver died ({type(exc).__name__})"
        try:
            with self.storage.session() as session:
                study = studies_repo.get_study(session, study_id=run.study_id)
                if study.status != StudyStatus.RUNNING or study.claimed_by != self.worker:
                    return
                if study.cancel_requested:
                    pass
                elif study.claim_count < self.settings.max_study_attempts:
                    studies_repo.release_study(session, study_id=run.study_id, worker=self.worker)
                    log.warning(
                        "study %s: %s; queued again to resume (attempt %d of %d)",
                        run.study_id,
                        reason,
                        study.claim_count + 1,
                        self.settings.max_study_attempts,
                    )
                    return
        except (NotFound, LeaseLost):
            return
        if study.cancel_requested:
            finish_without_driver(self.storage, run.study_id, StudyStatus.CANCELLED, worker=self.worker)
        else:
            self._fail(run, f"{reason} {study.claim_count} times; giving up")

    def _fail(self, run: _Run, error: str) -> None:
        with contextlib.suppress(NotFound, LeaseLost):
            finish_without_driver(self.storage, run.study_id, StudyStatus.FAILED, worker=self.worker, error=error)

    def _enforce_cancels(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                with self.storage.session(readonly=True) as session:
                    study = studies_repo.get_study(session, study_id=run.study_id)
            except NotFound:  # deleted under its driver, which sees it too and stops
                self.abandon(run.study_id)
                continue
            if not study.cancel_requested:
                continue
            now = time.monotonic()
            if run.cancel_seen is None:
                run.cancel_seen = now
            elif now - run.cancel_seen > CANCEL_GRACE_S:
                log.warning(
                    "study %s: driver did not stop within %.0f s of cancel; killing it", run.study_id, CANCEL_GRACE_S
                )
                with self._lock:
                    self._runs.pop(run.study_id, None)
                _kill(run.actor)
                self._leaked = True
                with contextlib.suppress(NotFound, LeaseLost):
                    finish_without_driver(self.storage, run.study_id, StudyStatus.CANCELLED, worker=self.worker)

    def _claim(self) -> None:
        while len(self._runs) < self.settings.max_running_studies and not self._stop.is_set():
            with self.storage.session() as session:
                study = studies_repo.claim_next_study(
                    session,
                    worker=self.worker,
                    lease_s=self.settings.lease_timeout_s,
                    max_running_per_owner=self.settings.max_running_studies_per_user,
                )
            if study is None:
                return
            if study.id in self._runs:  # its lease lapsed while this service ran it: keep the running driver
                log.warning("study %s: lease lapsed under a live driver; renewed", study.id)
                continue
            if study.claim_count > self.settings.max_study_attempts:
                self._fail(
                    _Run(study.id, None, None, study.claim_count),
                    f"started {study.claim_count - 1} times without finishing; giving up",
                )
                continue
            verb = "resuming" if study.claim_count > 1 else "starting"
            log.info("%s study %s (%r, attempt %d)", verb, study.id, study.name, study.claim_count)
            actor = StudyDriver.options(num_cpus=0, name=None, max_restarts=0).remote(self._options, study.id)
            with self._lock:
                self._runs[study.id] = _Run(study.id, actor, actor.run.remote(), study.claim_count)


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # already dead
        log.debug("ray.kill: %s", exc)
