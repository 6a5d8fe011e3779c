"""Meta-training runs as service jobs: queued by ``POST /api/v1/meta-runs``, each run by a Ray actor.

:class:`MetaJobs` is a small launcher that the scheduler's loop calls on every pass, next to its studies
(rather than a second kind of job inside :class:`~optforge.service.scheduler.Scheduler`, whose reaping,
cancelling and Tune placement-group sweeping are all about studies). It reuses the same machinery: the
scheduler's worker id and ``DriverOptions``, the same lease settings, and the lease protocol of
``storage.repo.learned`` (claim → heartbeat → finish, or release on stop), which mirrors the studies'.
One pass:

1. **reaps** actors that ended. An actor that returned already wrote its run's final status. An actor that
   died gives its run back to the queue (it resumes from its checkpoint), or fails it after
   ``max_study_attempts`` claims.
2. **renews** the lease of every live run; a run whose lease is gone (cancelled, deleted, taken over)
   has its actor killed.
3. **claims** queued runs (or running ones whose lease expired: their service died) while fewer than
   ``MAX_RUNNING_META_RUNS`` run here, and starts an actor for each.

Resuming: a run's files live in ``<data_dir>/<spec.output_dir>`` (the service sets ``output_dir`` to
``meta-runs/<random id>`` on submission). ``MetaTrainer`` writes ``checkpoint.pt`` there every
``checkpoint_every`` outer steps; the next attempt resumes from it, and the storage callback first forgets the
points recorded after it, so the stored curve has each step once.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from optforge.service.driver import DriverOptions, transient
from optforge.service.meta_recorder import StorageMetaRecorder
from optforge.settings import Settings
from optforge.spec import StudyStatus
from optforge.storage.database import Storage
from optforge.storage.errors import LeaseLost, NotFound, StorageError
from optforge.storage.repo import learned as learned_repo

log = logging.getLogger("optforge.service")

# Meta-training runs at once per service. One: a run keeps every CPU it is given busy for hours (its
# antithetic pairs fan out over Ray), and a second one would only halve the speed of both while studies wait.
MAX_RUNNING_META_RUNS = 1
# Where the service keeps meta-training files, inside its data directory.
META_RUNS_DIR = "meta-runs"


def run_output_dir(data_dir: str | Path, output_dir: str) -> Path:
    """A job's files: ``output_dir`` (relative, as the service stores it) inside the service's ``data_dir``."""
    path = Path(output_dir)
    return path if path.is_absolute() else Path(data_dir).expanduser() / path


def execute_meta_run(storage: Storage, options: DriverOptions, run_id: int) -> str:
    """One attempt at run ``run_id`` (held by ``options.worker``): meta-train, recording into ``storage``,
    from the run's checkpoint if an earlier attempt left one. Returns how it ended, for the log."""
    from optforge.learned_opt.meta.spec import MetaTrainSpec
    from optforge.learned_opt.meta.trainer import MetaTrainer  # torch: loaded in the actor only

    with storage.session(readonly=True) as session:
        run = learned_repo.get_meta_run(session, run_id=run_id, with_curve=False)
        lease = learned_repo.get_meta_run_leases(session, run_ids=[run_id])[run_id]
    if lease.claimed_by != options.worker or run.status != StudyStatus.RUNNING:
        return "lease lost before start"
    try:
        spec = MetaTrainSpec.model_validate(run.spec)
        spec = spec.model_copy(update={"output_dir": str(run_output_dir(options.data_dir, spec.output_dir))})
        recorder = StorageMetaRecorder(storage, run_id, spec, worker=options.worker)
        trainer = MetaTrainer(spec, callbacks=[recorder])
        resume = trainer.checkpoint_path.is_file()
        if not resume:
            recorder.start_fresh()
        log.info("meta-run %s: attempt %d, %s", run_id, lease.claim_count, "resuming" if resume else "starting")
        result = trainer.run(resume=resume)
        _finish(storage, run_id, options.worker, StudyStatus.COMPLETED)
        return f"completed {result.steps} outer steps"
    except LeaseLost as exc:  # cancelled, or taken over by another service: its state is not ours to write
        return f"lease lost: {exc}"
    except Exception as exc:
        log.exception("meta-run %s failed", run_id)
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        with contextlib.suppress(LeaseLost, NotFound):
            _finish(storage, run_id, options.worker, StudyStatus.FAILED, error[-4000:])
        return "failed"


@transient
def _finish(storage: Storage, run_id: int, worker: str, status: StudyStatus, error: str | None = None) -> None:
    with storage.session() as session:
        learned_repo.finish_meta_run(session, run_id=run_id, worker=worker, status=status, error=error)


@ray.remote(num_cpus=0, max_restarts=0)
class MetaRunDriver:
    """Runs one meta-training run (:func:`execute_meta_run`). Owned by the service process: it dies with it.

    Stopping is ``ray.kill``: the trainer's checkpoint file is replaced atomically, so a killed run loses at
    most ``checkpoint_every`` outer steps, which the next attempt computes again.
    """

    def __init__(self, options: DriverOptions, run_id: int) -> None:
        self.options = options
        self.run_id = run_id

    def run(self) -> str:
        logging.basicConfig(level=logging.INFO)
        storage = Storage.open(self.options.database_url, migrate=False)
        try:
            return execute_meta_run(storage, self.options, self.run_id)
        finally:
            storage.close()


@dataclass
class _Job:
    run_id: int
    actor: Any
    ref: Any
    attempt: int
    last_beat: float = field(default_factory=time.monotonic)


class MetaJobs:
    """The service's meta-training jobs; :meth:`tick` is one pass (see the module docstring)."""

    def __init__(self, storage: Storage, settings: Settings, options: DriverOptions) -> None:
        self.storage = storage
        self.settings = settings
        self.options = options
        self._jobs: dict[int, _Job] = {}

    @property
    def worker(self) -> str:
        return self.options.worker

    def running_ids(self) -> list[int]:
        return list(self._jobs)

    def tick(self, *, claim: bool = True) -> None:
        """One pass: reap, renew leases (killing the actors of runs that lost theirs), claim."""
        self._reap()
        self._renew()
        if claim:
            self._claim()

    def stop(self) -> None:
        """Kill this service's actors and queue their runs again, so the next start resumes them at once."""
        jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            _kill(job.actor)
            try:
                with self.storage.session() as session:
                    learned_repo.release_meta_run(session, run_id=job.run_id, worker=self.worker)
                log.info("meta-run %s put back in the queue (service stopping)", job.run_id)
            except (LeaseLost, NotFound):  # it finished or was cancelled meanwhile
                pass
            except StorageError as exc:  # its lease expires instead, and the next service resumes it then
                log.warning("could not put meta-run %s back in the queue: %s", job.run_id, exc)

    def _reap(self) -> None:
        if not self._jobs:
            return
        jobs = list(self._jobs.values())
        ready, _ = ray.wait([j.ref for j in jobs], num_returns=len(jobs), timeout=0)
        done = {id(ref) for ref in ready}
        for job in jobs:
            if id(job.ref) not in done:
                continue
            del self._jobs[job.run_id]
            try:
                log.info("meta-run %s actor ended: %s", job.run_id, ray.get(job.ref))
            except RayTaskError as exc:  # the actor itself raised (not the training, which it catches): a bug
                self._fail(job.run_id, f"the meta-training actor raised: {exc.cause!r}" if exc.cause else str(exc))
            except (RayActorError, Exception) as exc:
                self._lost(job, exc)

    def _lost(self, job: _Job, exc: BaseException) -> None:
        """The actor died: queue the run again to resume from its checkpoint, or fail it after too many tries."""
        reason = f"the meta-training actor died ({type(exc).__name__})"
        if job.attempt >= self.settings.max_study_attempts:
            self._fail(job.run_id, f"{reason} {job.attempt} times; giving up")
            return
        with contextlib.suppress(LeaseLost, NotFound), self.storage.session() as session:
            learned_repo.release_meta_run(session, run_id=job.run_id, worker=self.worker)
            log.warning("meta-run %s: %s; queued again to resume (attempt %d)", job.run_id, reason, job.attempt + 1)

    def _fail(self, run_id: int, error: str) -> None:
        with contextlib.suppress(LeaseLost, NotFound), self.storage.session() as session:
            learned_repo.finish_meta_run(
                session, run_id=run_id, worker=self.worker, status=StudyStatus.FAILED, error=error
            )
        log.warning("meta-run %s failed: %s", run_id, error)

    def _renew(self) -> None:
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if now - job.last_beat < self.settings.heartbeat_interval_s:
                continue
            try:
                with self.storage.session() as session:
                    learned_repo.heartbeat_meta_run(session, run_id=job.run_id, worker=self.worker)
                job.last_beat = now
            except (LeaseLost, NotFound) as exc:  # cancelled, deleted or taken over: stop computing it
                log.info("meta-run %s: %s; stopping its actor", job.run_id, exc)
                self._jobs.pop(job.run_id, None)
                _kill(job.actor)

    def _claim(self) -> None:
        while len(self._jobs) < MAX_RUNNING_META_RUNS:
            with self.storage.session() as session:
                lease = learned_repo.claim_next_meta_run(
                    session, worker=self.worker, lease_s=self.settings.lease_timeout_s
                )
                run = (
                    None if lease is None else learned_repo.get_meta_run(session, run_id=lease.run_id, with_curve=False)
                )
            if lease is None or run is None:
                return
            if lease.run_id in self._jobs:  # its lease lapsed while this service ran it: keep the running actor
                continue
            if lease.claim_count > self.settings.max_study_attempts:
                self._fail(lease.run_id, f"started {lease.claim_count - 1} times without finishing; giving up")
                continue
            # In-process pairs (workers: 0) compute in the actor itself: it then holds one CPU. With workers,
            # the pairs are Ray tasks of one CPU each and the actor only waits for them.
            cpus = 1 if run.spec.get("workers", 0) == 0 else 0
            actor = MetaRunDriver.options(num_cpus=cpus, max_restarts=0).remote(self.options, lease.run_id)
            self._jobs[lease.run_id] = _Job(lease.run_id, actor, actor.run.remote(), lease.claim_count)
            log.info("%s meta-run %s (%r, attempt %d)", "resuming" if lease.claim_count > 1 else "starting",
                     lease.run_id, run.name, lease.claim_count)  # fmt: skip


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # already dead
        log.debug("ray.kill: %s", exc)
