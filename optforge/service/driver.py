"""The study driver: a Ray actor that runs one study's search and writes everything it reports to storage.

It opens its own database connection (the API process's pool never crosses into Ray). While it runs, a
keeper thread renews the study's lease and reads its cancel flag; ``should_stop`` hands that flag to the
search, which tears the running trials down within about a second.

Resuming after the service died: Ray Tune's experiment state lives in ``<data_dir>/tune/study-<id>``
and is snapshotted every ``TUNE_SNAPSHOT_S``; the next attempt restores it (``run_study(resume=True)``),
so the search keeps its budget and Optuna keeps everything it learned. In storage, trials that finished
stay exactly as they were; trials that were running are marked cancelled ("interrupted"), and Tune runs
their budget again. A trial that finished after the last snapshot and is re-run by the restored Tune is
not written twice: its stored result is kept. The best configurations are ranked over the trials of
every attempt.

μTransfer studies (``search.proxy`` set) run through :func:`optforge.search.transfer.run_transfer`. Their
proxy trials are stored as the search reports them (phase ``search``, at the proxy width), the target
width's runs as phase ``transfer`` (``TRANSFER_PHASE``), every trial with the width it trained at. On a
resume, the proxy trials an earlier attempt finished are ranked in before the top-k are chosen, as in a
plain study; see ``StudyRun._search`` for the target phase.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from optforge.spec import (
    StudyDetail,
    StudyEvent,
    StudyEventKind,
    StudyStatus,
    TrialConfig,
    TrialRecord,
    TrialResult,
    TrialStatus,
)
from optforge.storage.database import Storage
from optforge.storage.errors import LeaseLost, NotFound, StorageError, StorageUnavailable
from optforge.storage.repo import best as best_repo
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import metrics as metrics_repo
from optforge.storage.repo import studies as studies_repo
from optforge.storage.repo import trials as trials_repo

log = logging.getLogger("optforge.driver")

# Warm start: how many stored configurations of similar tasks are evaluated first. A quarter of the
# budget at most, so the search still explores; 4 at most, since beyond the nearest few tasks the
# configurations say little about this one.
WARM_START_MAX = 4
# Tune snapshots its experiment state (trials, Optuna's sampler) every 10 s by default; a crash loses at
# most this long of search state instead. One snapshot of a study of a few hundred trials costs
# milliseconds, so once a second is cheap.
TUNE_SNAPSHOT_S = "1"
# Writes are retried while the database is unreachable (a PostgreSQL restart takes seconds), for up to a
# minute: long enough to ride out a restart, short enough that a dead database fails the study visibly.
transient = retry(
    retry=retry_if_exception_type(StorageUnavailable),
    wait=wait_exponential(multiplier=0.2, max=5),
    stop=stop_after_delay(60),
    reraise=True,
)
INTERRUPTED = "interrupted: the service running this trial stopped; its budget runs again after the resume"
# The phase a μTransfer study's target-width runs are stored under. The search's events call it "target"
# (optforge.search.transfer); storage, the API and the status page (web/transfer.py) know it by this name.
TRANSFER_PHASE = "transfer"


def stored_phase(data: dict[str, Any]) -> str:
    """The phase a trial event's trial is stored under: the event's own, with μTransfer's target → transfer."""
    phase = str(data.get("phase", "search"))
    return TRANSFER_PHASE if phase == "target" else phase


@dataclass(frozen=True)
class DriverOptions:
    """What a driver needs from the service's settings (picklable: it travels to the actor)."""

    database_url: str = field(repr=False)  # may hold a password: never in a repr, a log line or a traceback
    worker: str
    data_dir: str
    heartbeat_interval_s: float
    cancel_poll_interval_s: float
    allow_user_code: bool


class LeaseKeeper:
    """A thread that renews the study's lease and reads its cancel flag until ``close()``."""

    def __init__(self, storage: Storage, study_id: int, options: DriverOptions, stopping: threading.Event) -> None:
        self.storage = storage
        self.study_id = study_id
        self.options = options
        self.stopping = stopping  # the service is shutting down: stop, and give the study back
        self.cancelled = False
        self.lost: str | None = None  # why this driver must stop writing (another worker took the study)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"optforge-lease-{study_id}", daemon=True)
        self._thread.start()

    def should_stop(self) -> bool:
        return self.cancelled or self.lost is not None or self.stopping.is_set()

    def _run(self) -> None:
        since_beat = 0.0
        while not self._stop.wait(self.options.cancel_poll_interval_s):
            since_beat += self.options.cancel_poll_interval_s
            try:
                if since_beat >= self.options.heartbeat_interval_s:
                    since_beat = 0.0
                    with self.storage.session() as session:
                        study = studies_repo.heartbeat(session, study_id=self.study_id, worker=self.options.worker)
                else:
                    with self.storage.session(readonly=True) as session:
                        study = studies_repo.get_study(session, study_id=self.study_id)
                self.cancelled = self.cancelled or study.cancel_requested
            except (LeaseLost, NotFound) as exc:
                self.lost = str(exc)
            except StorageError as exc:  # transient: the next beat retries, the lease tolerates a few misses
                log.warning("study %s: lease renewal failed: %s", self.study_id, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class StorageReporter:
    """The search's reporter: each StudyEvent becomes trial, metric-point and event-log writes.

    The search's ``finished`` event is held back: the driver appends it together with the study's final
    status, so a client that sees ``finished`` on the stream also sees the final status and best config.
    """

    def __init__(
        self, storage: Storage, study_id: int, keeper: LeaseKeeper, *, kept: frozenset[str] = frozenset()
    ) -> None:
        self.storage = storage
        self.study_id = study_id
        self.keeper = keeper
        self.kept = kept  # keys of trials an earlier attempt finished: a restored Tune may re-run them
        self.trial_ids: dict[str, int] = {}  # the search's trial key → the stored trial id
        self.numbers: dict[str, int] = {}
        self.finished: StudyEvent | None = None
        self._lock = threading.Lock()

    def __call__(self, event: StudyEvent) -> None:
        if self.keeper.lost is not None:
            return  # another worker owns the study now: write nothing more
        if event.kind == StudyEventKind.FINISHED:
            self.finished = event
            return
        if event.trial_id in self.kept:
            return  # finished and stored by an earlier attempt; this re-run changes nothing
        with self._lock:
            self._write(event)

    @transient
    def _write(self, event: StudyEvent) -> None:
        """One event in one unit of work (retried as a whole while the database is unavailable)."""
        with self.storage.session() as session:
            data = dict(event.data)
            key = event.trial_id
            if key is not None and event.kind in (
                StudyEventKind.TRIAL_STARTED,
                StudyEventKind.TRIAL_RESULT,
                StudyEventKind.TRIAL_FINISHED,
            ):
                trial = self._write_trial(session, event.kind, key, data)
                data["trial"], data["number"] = trial, self.numbers[key]
            events_repo.append_event(session, study_id=self.study_id, event=event.model_copy(update={"data": data}))

    def _write_trial(self, session: Any, kind: StudyEventKind, key: str, data: dict[str, Any]) -> int:
        if kind == StudyEventKind.TRIAL_STARTED or key not in self.trial_ids:
            record = trials_repo.upsert_trial(
                session,
                study_id=self.study_id,
                key=key,
                config=TrialConfig.model_validate(data["config"]) if "config" in data else self._config(session, key),
                status=TrialStatus.RUNNING,
                phase=stored_phase(data),
                seed=data.get("seed"),
                width=data.get("width"),  # μTransfer events carry it (proxy or target); a plain study's do not
                resources=data.get("resources"),
                attempt=data.get("attempt") if kind == StudyEventKind.TRIAL_STARTED else None,
            )
            self.trial_ids[key], self.numbers[key] = record.id, record.number
        trial_id = self.trial_ids[key]
        if kind == StudyEventKind.TRIAL_RESULT and data.get("point"):
            from optforge.spec import MetricPoint

            metrics_repo.insert_metric_points(
                session, trial_id=trial_id, points=[MetricPoint.model_validate(data["point"])]
            )
        elif kind == StudyEventKind.TRIAL_FINISHED and data.get("result"):
            result = TrialResult.model_validate(data["result"])
            trials_repo.finish_trial(session, trial_id=trial_id, result=result, value=data.get("value"))
            data.pop("result", None)  # the curve is in the trial's metric points; the stream carries the summary
            data["final"], data["steps"] = result.final, result.steps
        return trial_id

    def _config(self, session: Any, key: str) -> TrialConfig:
        return trials_repo.get_trial_by_key(session, study_id=self.study_id, key=key).config


def previous_trials(detail: StudyDetail) -> list[TrialRecord]:
    """The trials an earlier attempt finished normally (completed, pruned or diverged): they are kept."""
    kept = (TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.DIVERGED)
    return [t for t in detail.trials if t.status in kept]


def warm_start_configs(storage: Storage, detail: StudyDetail) -> list[TrialConfig]:
    """Stored best configurations of the nearest tasks, within this study's families, for a first run.

    Configurations outside the study's space (another schedule, a fixed value) are skipped by the search.
    """
    search = detail.spec.search
    if not search.warm_start:
        return []
    limit = min(WARM_START_MAX, max(1, search.n_trials // 4))
    with storage.session(readonly=True) as session:
        recs = best_repo.recommend(
            session, task=detail.spec.task, limit=limit, families=search.families, exclude_study_id=detail.id
        )
    out: list[TrialConfig] = []
    for rec in recs:
        if rec.best.config not in out:
            out.append(rec.best.config)
    return out


def _summary(record: TrialRecord) -> Any:
    """A stored trial as the search's TrialSummary (without its curve), to rank it with new ones."""
    from optforge.search.results import TrialSummary

    result = TrialResult(
        status=record.status, steps=record.steps, metric=record.metric or "val_loss", final=record.final,
        best=record.best, step_reached_target=record.step_reached_target,
        seconds_reached_target=record.seconds_reached_target, wall_time=record.wall_time or 0.0,
        device=record.device or "cpu", error=record.error, info=record.info,
    )  # fmt: skip
    return TrialSummary(
        trial_id=record.key, number=record.number, phase="reseed" if record.phase == "reseed" else "search",
        seed=record.seed or 0, config=record.config, result=result, value=record.value, attempts=record.attempt,
    )  # fmt: skip


def merged_result(result: Any, previous: list[TrialRecord], detail: StudyDetail) -> Any:
    """``result`` (a StudyResult of this attempt) with the search trials earlier attempts finished ranked in."""
    from optforge.search import ranking

    fresh = {t.trial_id for t in [*result.trials, *result.reseeds]}
    old = [_summary(t) for t in previous if t.key not in fresh and t.phase == "search"]
    if not old:
        return result
    task, search = detail.spec.task, detail.spec.search
    trials = ranking.rank(
        [*result.trials, *old], lambda t: t.result,
        mode=task.mode, objective=search.objective, unit=search.time_to_target_unit,
    )  # fmt: skip
    return result.model_copy(update={"trials": [t.model_copy(update={"rank": i}) for i, t in enumerate(trials)]})


def final_summary(result: Any) -> dict[str, Any]:
    """What the study's ``finished`` event adds to the search's: the winner, and for a μTransfer study both
    widths and how well the proxy ranked the candidates it handed on (Spearman's rho, Kendall's tau)."""
    from optforge.search.transfer import TransferResult

    best = result.best_config
    summary = {"best_config": best.model_dump(mode="json") if best else None, "best_value": result.best_value}
    if isinstance(result, TransferResult):
        summary.update(
            proxy_width=result.proxy_width,
            target_width=result.target_width,
            spearman=result.spearman,
            kendall=result.kendall,
        )
    return summary


def tune_dir(data_dir: str, study_id: int) -> Path:
    """Where Ray Tune keeps a study's experiment state between attempts."""
    return Path(data_dir).expanduser() / "tune" / f"study-{study_id}"


class StudyRun:
    """One attempt at one study, inside the driver actor."""

    def __init__(
        self, storage: Storage, options: DriverOptions, study_id: int, stopping: threading.Event | None = None
    ) -> None:
        self.storage = storage
        self.options = options
        self.study_id = study_id
        self.stopping = stopping or threading.Event()

    def execute(self) -> str:
        with self.storage.session() as session:
            detail = studies_repo.get_study_detail(session, study_id=self.study_id, with_curves=False)
            if detail.claimed_by != self.options.worker:
                return "lease lost before start"
            interrupted = trials_repo.cancel_unfinished_trials(session, study_id=self.study_id, error=INTERRUPTED)
        done = previous_trials(detail)
        keeper = LeaseKeeper(self.storage, self.study_id, self.options, self.stopping)
        reporter = StorageReporter(self.storage, self.study_id, keeper, kept=frozenset(t.key for t in done))
        try:
            problem = self._refuse(detail)
            if problem:
                return self._finish(StudyStatus.FAILED, reporter, error=problem)
            warm = warm_start_configs(self.storage, detail) if detail.claim_count == 1 else []
            log.info(
                "study %s: attempt %d, %d finished trials kept, %d interrupted, %d warm-start configs",
                self.study_id, detail.claim_count, len(done), interrupted, len(warm),
            )  # fmt: skip
            result = self._search(detail, reporter, keeper, warm, done)
            if keeper.lost is not None:
                return f"lease lost: {keeper.lost}"
            if self.stopping.is_set() and not keeper.cancelled:
                return self._give_back()
            with self.storage.session() as session:
                best_repo.save_best_configs(session, study_id=self.study_id, configs=result.best_configs())
            status = (
                StudyStatus.CANCELLED if keeper.cancelled or result.status == "cancelled" else StudyStatus.COMPLETED
            )
            return self._finish(status, reporter, data=final_summary(result))
        except Exception as exc:
            if keeper.lost is not None:
                return f"lease lost: {keeper.lost}"
            log.exception("study %s failed", self.study_id)
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
            return self._finish(StudyStatus.FAILED, reporter, error=error[-4000:])
        finally:
            keeper.close()

    def _search(
        self,
        detail: StudyDetail,
        reporter: StorageReporter,
        keeper: LeaseKeeper,
        warm: list[TrialConfig],
        done: list[TrialRecord],
    ) -> Any:
        """This attempt's search with the trials earlier attempts finished ranked in: a StudyResult, or a
        TransferResult for a μTransfer study (``search.proxy`` set)."""
        from optforge.search import run_study
        from optforge.search.transfer import run_transfer

        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", TUNE_SNAPSHOT_S)
        common: dict[str, Any] = {
            "reporter": reporter,
            "should_stop": keeper.should_stop,
            "storage_path": tune_dir(self.options.data_dir, self.study_id),
            "resume": detail.claim_count > 1,
            "warm_start_configs": warm,
        }
        if detail.spec.search.proxy is None:
            return merged_result(run_study(detail.spec, **common), done, detail)
        # Resuming a μTransfer study: the proxy trials earlier attempts finished are ranked in before the top-k
        # are chosen, as in a plain study. The target phase needs nothing from storage: run_transfer restores
        # its Tune state when the candidates are the same (else runs it afresh), so this attempt's target study
        # holds every run the winner and the rank agreement are computed from. Rows an earlier attempt stored
        # for target runs that now run again stay, as a plain study's re-seeds do.
        proxy_done = [t for t in done if t.phase == "search"]
        return run_transfer(detail.spec, merge_proxy=lambda proxy: merged_result(proxy, proxy_done, detail), **common)

    @transient
    def _give_back(self) -> str:
        """The service is stopping: queue the study again for the next start. Its Tune state stays in
        ``tune_dir`` (unlike ``_finish``), so that attempt resumes the search."""
        with self.storage.session() as session:
            studies_repo.release_study(session, study_id=self.study_id, worker=self.options.worker)
        return "given back"

    def _refuse(self, detail: StudyDetail) -> str | None:
        task = detail.spec.task
        if not self.options.allow_user_code and (task.model.entrypoint or task.data.entrypoint):
            return "this study runs user code (an entry point) and the server no longer allows it (--allow-user-code)"
        return None

    def _finish(
        self, status: StudyStatus, reporter: StorageReporter, *, error: str | None = None, data: dict | None = None
    ) -> str:
        event = reporter.finished or StudyEvent(kind=StudyEventKind.FINISHED)
        event = event.model_copy(
            update={"data": {**event.data, **(data or {}), "status": status.value, "error": error}}
        )
        self._write_final(status, error, event)
        shutil.rmtree(tune_dir(self.options.data_dir, self.study_id), ignore_errors=True)
        return status.value

    @transient
    def _write_final(self, status: StudyStatus, error: str | None, event: StudyEvent) -> None:
        with self.storage.session() as session:
            trials_repo.cancel_unfinished_trials(session, study_id=self.study_id, error="the study ended")
            studies_repo.set_study_status(
                session, study_id=self.study_id, status=status, error=error, worker=self.options.worker
            )
            events_repo.append_event(session, study_id=self.study_id, event=event)


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=2)  # 2: ``stop`` must run while ``run`` does
class StudyDriver:
    """Runs one study (see :class:`StudyRun`). Owned by the service process: it dies when the service dies.

    ``stop()`` asks it to wind the search down and give the study back to the queue. Prefer it to
    ``ray.kill``: Ray Tune removes its placement groups only when it stops normally, and a killed driver's
    placement groups keep their CPUs reserved until the service process exits.
    """

    def __init__(self, options: DriverOptions, study_id: int) -> None:
        self.options = options
        self.study_id = study_id
        self.stopping = threading.Event()

    def run(self) -> str:
        logging.basicConfig(level=logging.INFO)
        storage = Storage.open(self.options.database_url, migrate=False)
        try:
            return StudyRun(storage, self.options, self.study_id, self.stopping).execute()
        finally:
            storage.close()

    def stop(self) -> None:
        self.stopping.set()
