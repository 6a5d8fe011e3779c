"""Storage benchmark: metric-point write rate and whole-study read latency, on SQLite and PostgreSQL.

    python benchmarks/storage.py                      # SQLite + a throwaway durable PostgreSQL (if installed)
    python benchmarks/storage.py --postgres-url postgresql+psycopg://user@host/db   # an existing server
    python benchmarks/storage.py --quick              # smaller sizes, for a smoke run

Optuna's users report RDB storage slowing down at scale (optuna#3048: a transaction per call makes a
study ~50x slower than in memory; optuna#3053: trials take 10x longer at 80k trials on PostgreSQL, work
that grows with the study). This script measures the two places where that would show up for optforge,
and puts Optuna's own calls on the same database next to ours:

  write   metric points/s: ``insert_metric_points`` batched (one multi-row INSERT per 1000 points) vs
          one INSERT + COMMIT per point (what a naive per-step reporter does) vs Optuna's
          ``trial.report`` (a transaction per intermediate value);
  read    p50/p99 ms of "study with all trials and their curves" at 10k points: ``get_study_detail``
          (3 queries whatever the trial count) vs an N+1 read (one curve query per trial) vs Optuna's
          ``study.get_trials()`` over the same values;
  scale   p50 ms to report one trial (upsert + finish with its curve) in an empty study vs in a study
          that already holds thousands of trials: constant, because nothing on that path scans the study;
  summary what a status poll of a study that changed reads (running trials, best trial so far) in that
          large study: ``count_trials`` + ``best_trial`` (two indexed queries) vs ``list_trials`` and a
          scan in Python, and their ratio.

PostgreSQL runs durable (fsync on), SQLite with optforge's defaults (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna

from optforge.spec import MetricPoint, StudySpec, TrialConfig, TrialResult, TrialStatus
from optforge.storage import Storage, repo


@dataclass(frozen=True)
class Sizes:
    points: int  # metric points in the read benchmark, and batched-write volume
    trials: int  # trials those points are spread over
    single_points: int  # points written one by one (each commits: slow on a durable disk)
    reads: int  # repetitions of each read
    scale_trials: int  # trials already in the study for the "scale" row


FULL = Sizes(points=10_000, trials=100, single_points=1_000, reads=40, scale_trials=2_000)
QUICK = Sizes(points=2_000, trials=20, single_points=200, reads=10, scale_trials=500)


def _points(n: int, start: int = 0) -> list[MetricPoint]:
    return [
        MetricPoint(
            step=s,
            train_loss=2.0 / (1 + s),
            val_loss=2.5 / (1 + s) if s % 10 == 0 else None,
            val_accuracy=None,
            lr=1e-3,
            examples_per_s=1000.0,
            wall_time=s * 0.01,
        )
        for s in range(start, start + n)
    ]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1000, p99 * 1000


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm caches and connections: the benchmark is about steady state
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _new_trial(storage: Storage, study_id: int, key: str) -> int:
    with storage.session() as s:
        return repo.trials.upsert_trial(s, study_id=study_id, key=key, config=TrialConfig()).id


def bench_backend(url: str, sizes: Sizes) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with Storage.open(url) as storage:
        with storage.session() as s:
            study = repo.studies.create_study(s, spec=StudySpec(name="bench"))

        # -- writes -------------------------------------------------------------------------------------
        trial = _new_trial(storage, study.id, "batched")
        points = _points(sizes.points)
        start = time.perf_counter()
        for i in range(0, len(points), 1000):  # what a trial reporting every 1000 steps (or at its end) does
            with storage.session() as s:
                repo.metrics.insert_metric_points(s, trial_id=trial, points=points[i : i + 1000])
        rows.append(
            (
                "write: batched, 1000 points per call and commit",
                f"{sizes.points / (time.perf_counter() - start):,.0f} points/s",
            )
        )

        trial = _new_trial(storage, study.id, "single")
        start = time.perf_counter()
        for point in _points(sizes.single_points):
            with storage.session() as s:
                repo.metrics.insert_metric_points(s, trial_id=trial, points=[point])
        rate = sizes.single_points / (time.perf_counter() - start)
        rows.append(("write: one by one, an INSERT and commit per point", f"{rate:,.0f} points/s"))

        ostudy = optuna.create_study(storage=url, study_name=f"bench-report-{time.time_ns()}")
        otrial = ostudy.ask()
        start = time.perf_counter()
        for step in range(sizes.single_points):
            otrial.report(1.0 / (1 + step), step)
        rate = sizes.single_points / (time.perf_counter() - start)
        rows.append(("write: Optuna trial.report, same database", f"{rate:,.0f} points/s"))

        # -- reads ----------------------------------------------------------------------------------------
        with storage.session() as s:
            read_study = repo.studies.create_study(s, spec=StudySpec(name="read"))
        per_trial = sizes.points // sizes.trials
        ostudy = optuna.create_study(storage=url, study_name=f"bench-read-{time.time_ns()}")
        for t in range(sizes.trials):
            with storage.session() as s:
                tid = repo.trials.upsert_trial(s, study_id=read_study.id, key=f"t{t}", config=TrialConfig())
                result = TrialResult(status=TrialStatus.COMPLETED, final=0.1, curve=_points(per_trial))
                repo.trials.finish_trial(s, trial_id=tid.id, result=result)
            ostudy.add_trial(
                optuna.trial.create_trial(
                    value=0.1,
                    params={"lr": 1e-3},
                    distributions={"lr": optuna.distributions.FloatDistribution(1e-5, 1, log=True)},
                    intermediate_values={p.step: p.train_loss for p in _points(per_trial)},
                )
            )

        def detail() -> None:
            with storage.session(readonly=True) as s:
                got = repo.studies.get_study_detail(s, study_id=read_study.id)
            assert sum(len(t.curve) for t in got.trials) == sizes.points

        def n_plus_one() -> None:
            with storage.session(readonly=True) as s:
                trials = repo.trials.list_trials(s, study_id=read_study.id)
                total = sum(len(repo.metrics.get_curve(s, trial_id=t.id)) for t in trials)
            assert total == sizes.points

        def optuna_read() -> None:
            trials = optuna.load_study(study_name=ostudy.study_name, storage=url).get_trials(deepcopy=False)
            assert sum(len(t.intermediate_values) for t in trials) == sizes.points

        label = f"{sizes.points:,} points in {sizes.trials} trials"
        for name, fn in [
            (f"read: study + all trials + curves ({label})", detail),
            ("read: same, N+1 (list_trials, then get_curve per trial)", n_plus_one),
            ("read: same data through Optuna get_trials()", optuna_read),
        ]:
            p50, p99 = _percentiles(_timed(fn, sizes.reads))
            rows.append((name, f"p50 {p50:,.1f} ms  p99 {p99:,.1f} ms"))

        # -- scale ----------------------------------------------------------------------------------------
        row, scale_study = _scale_row(storage, sizes)
        rows.append(row)
        rows.extend(_summary_rows(storage, scale_study, sizes))
    return rows


def _summary_rows(storage: Storage, study_id: int, sizes: Sizes) -> list[tuple[str, str]]:
    """What a status poll of a changed study reads: running trials and the best one, indexed vs a scan."""

    def indexed() -> tuple[int, object]:
        with storage.session(readonly=True) as s:
            running = repo.trials.count_trials(s, study_id=study_id, status=TrialStatus.RUNNING)
            return running, repo.trials.best_trial(s, study_id=study_id, mode="min")

    def scan() -> tuple[int, object]:
        with storage.session(readonly=True) as s:
            trials = repo.trials.list_trials(s, study_id=study_id)
        done = [t for t in trials if t.status == TrialStatus.COMPLETED and t.final is not None and t.phase == "search"]
        best = min(done, key=lambda t: (t.final, t.number), default=None)
        return sum(t.status == TrialStatus.RUNNING for t in trials), best

    (running_a, best_a), (running_b, best_b) = indexed(), scan()
    assert running_a == running_b and getattr(best_a, "id", None) == getattr(best_b, "id", None)
    label = f"{sizes.scale_trials + 100:,} trials"
    out, medians = [], []
    for name, fn in [
        (f"summary: running count + best trial ({label}), 2 indexed queries", indexed),
        ("summary: same, from list_trials and a Python scan", scan),
    ]:
        p50, p99 = _percentiles(_timed(fn, sizes.reads))
        medians.append(p50)
        out.append((name, f"p50 {p50:,.2f} ms  p99 {p99:,.2f} ms"))
    out.append(("summary: indexed / scan, p50", f"{medians[0] / medians[1]:.3f}x"))
    return out


def _report_one(storage: Storage, study_id: int, key: str) -> None:
    with storage.session() as s:
        trial = repo.trials.upsert_trial(s, study_id=study_id, key=key, config=TrialConfig())
        repo.trials.finish_trial(
            s, trial_id=trial.id, result=TrialResult(status=TrialStatus.COMPLETED, final=0.1, curve=_points(20))
        )


def _scale_row(storage: Storage, sizes: Sizes) -> tuple[tuple[str, str], int]:
    with storage.session() as s:
        study = repo.studies.create_study(s, spec=StudySpec(name="scale"))
    early = []
    for i in range(sizes.scale_trials):
        start = time.perf_counter()
        _report_one(storage, study.id, f"t{i}")
        if 10 <= i < 110:  # after 10 to warm up, like the reads
            early.append(time.perf_counter() - start)
    late = []
    for i in range(100):
        start = time.perf_counter()
        _report_one(storage, study.id, f"late{i}")
        late.append(time.perf_counter() - start)
    first, _ = _percentiles(early)
    last, _ = _percentiles(late)
    row = (
        f"scale: report a trial (20 points), at 10 trials vs at {sizes.scale_trials:,}",
        f"p50 {first:,.1f} ms vs {last:,.1f} ms",
    )
    return row, study.id


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    from optforge.testing.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer(durable=True).start()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")
        yield None
        return
    try:
        yield server.url
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", help="an existing server (default: start a throwaway one)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[str, list[tuple[str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = bench_backend(f"sqlite:///{tmp}/bench.db", sizes)
    if not args.no_postgres:
        with _postgres(args.postgres_url) as url:
            if url:
                results["PostgreSQL"] = bench_backend(url, sizes)
    width = max(len(name) for rows in results.values() for name, _ in rows)
    for backend, rows in results.items():
        print(f"\n{backend}")
        print(f"  {'measurement':<{width}}  result")
        print(f"  {'-' * width}  {'-' * 34}")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
