"""API load (issues 5 and 11): clients read study status and submit small studies while a study trains.

    python benchmarks/api_load.py                          # 50 readers + 5 submitters for 60 s, fresh service
    python benchmarks/api_load.py --duration 15            # a shorter run
    python benchmarks/api_load.py --trial-nice 0 15        # trial workers at nice 0, then at Ray's default 15
    python benchmarks/api_load.py --client h11 httpx       # the same load through each HTTP client library
    python benchmarks/api_load.py --checkout /tmp/old --checkout .  --rounds 2   # before/after a change
    python benchmarks/api_load.py --url http://127.0.0.1:8000 --token of_...      # an already running service

By default it starts ``optforge serve`` (``optforge.client.testing.LocalService``: SQLite, its own local
Ray, open mode on loopback) and submits a study big enough to train for the whole run. Once a trial
trains, for ``--duration`` seconds:

- ``--readers`` clients, each on its own keep-alive connection (an ``H11Client`` each, or with
  ``--client httpx`` an ``httpx.AsyncClient``), poll ``GET /api/v1/studies/{id}`` every ``--interval``
  seconds (0: back to back, which measures saturation);
- ``--submitters`` clients each submit a small study every ``--submit-interval`` seconds and cancel it
  at once. It queues behind the running study (one running study per user) and the cancel keeps the
  user's queue under its active-study limit, so the submissions load the API and the database, not Ray.

It prints, per operation, requests, errors, p50/p95/p99/max latency, and the service process's resident
memory (RSS) before and after the load, with the machine's load average: the clients, the service and the
trials share this machine's cores, so the numbers mean little without it. It also prints what the clients
themselves cost (an httpx client spends ~1.5 ms of CPU per request, install ``sniffio`` or httpcore tries
to import it on every request; hence the h11 default), and how late their own event loop woke up,
which is part of every latency measured, and their longest garbage-collection pause (their start-up heap
is frozen during the load, as the service's is). Clients start spread over one interval, as independent
pollers would be. Target (issue 5): no errors and p99 < 100 ms on a 2-core machine; issue 11: no errors, and
memory that does not grow without bound.

``run_scenario`` is also what ``tests/reliability/test_load.py`` runs, shorter and with fewer clients.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import random
import ssl
import statistics
import sys
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from json import dumps as _dumps  # post(json=...) names its argument as httpx does
from pathlib import Path
from typing import Any

import h11
import httpx
import psutil
from rich.console import Console
from rich.table import Table

from optforge.client.testing import LocalService

API = "/api/v1"
# The study that trains while the clients run: 200 trials of 400 steps keep both cores busy for far longer
# than a run lasts (it is cancelled at the end).
STUDY: dict[str, Any] = {
    "name": "api-load",
    "task": {"model": {"name": "mlp", "width": 32}, "data": {"name": "digits"}, "steps": 400, "eval_every": 20},
    "search": {"n_trials": 200, "families": ["adamw", "lion", "sgd"], "warm_start": False},
}
# What submitters send: a valid, small study (it is cancelled before it could run).
SMALL_STUDY: dict[str, Any] = {
    "name": "api-load-small",
    "task": {"model": {"name": "mlp", "width": 16}, "data": {"name": "digits"}, "steps": 50},
    "search": {"n_trials": 4, "families": ["adamw"], "warm_start": False},
}
READ, SUBMIT, CANCEL = "GET /studies/{id}", "POST /studies", "POST /studies/{id}/cancel"
# How often the clients' own event-loop lag is sampled.
LAG_PROBE_S = 0.05
# The target of issue 5, for the verdict line (benchmarks state targets; tests never assert timings).
TARGET_P99_MS = 100.0


@dataclass
class LoadResult:
    """What one load run saw: latencies (seconds) and errors per operation, and the service's memory."""

    duration_s: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    rss_before: int | None = None  # bytes
    rss_after: int | None = None
    load_before: float = 0.0  # 1-minute load average
    load_after: float = 0.0
    client_cpu_s: float = 0.0  # CPU this (client) process used during the load
    client_lag: list[float] = field(default_factory=list)  # how late this process's event loop woke up (s)
    client_gc: list[float] = field(default_factory=list)  # this process's garbage-collection pauses (s)
    trials_finished: int | None = None  # by the background study during the load

    @property
    def total_errors(self) -> int:
        return sum(len(e) for e in self.errors.values())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, interpolated."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


@dataclass
class Reply:
    """What :class:`H11Client` returns: the part of an ``httpx.Response`` the clients read."""

    status_code: int
    content: bytes

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    def json(self) -> Any:
        return json.loads(self.content)


class H11Client:
    """One keep-alive HTTP/1.1 connection on asyncio streams, framed by ``h11`` (what uvicorn serves with).

    The load generator's default: it costs a fraction of an ``httpx.AsyncClient``'s CPU per request, and on a
    2-core machine every millisecond the clients spend is one the service waits for. Plain ``http://`` only;
    ``--client httpx`` measures the same load through httpx.
    """

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"--client h11 speaks plain http://, not {base_url!r}: use --client httpx")
        self.host, self.port, self.timeout = url.hostname, url.port or 80, timeout
        self.headers = [("Host", url.netloc), *headers.items()]
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.connection = h11.Connection(h11.CLIENT)

    async def __aenter__(self) -> H11Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.streams is not None:
            self.streams[1].close()

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, json: Any = None) -> Reply:
        return await self.request("POST", path, b"" if json is None else _dumps(json).encode())

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        async with asyncio.timeout(self.timeout):
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            headers = self.headers
            if body is not None:
                headers = [*headers, ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            send = self.connection.send
            writer.write(
                b"".join(
                    [
                        send(h11.Request(method=method, target=path, headers=headers)),
                        send(h11.Data(data=body)) if body else b"",
                        send(h11.EndOfMessage()),
                    ]
                )
            )
            status, chunks = 0, []
            while True:
                event = self.connection.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionResetError("the service closed the connection")
                    self.connection.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    self.connection.start_next_cycle()
                    return Reply(status, b"".join(chunks))


# What a failed request raises, by client: counted as errors, never raised out of the load.
REQUEST_ERRORS = (httpx.HTTPError, OSError, TimeoutError, h11.ProtocolError)


def make_client(kind: str, url: str, headers: dict[str, str], tls: ssl.SSLContext) -> H11Client | httpx.AsyncClient:
    if kind == "h11":
        return H11Client(url, headers, timeout=30)
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30, verify=tls)


async def _timed(result: LoadResult, op: str, request: Any) -> httpx.Response | Reply | None:
    """Send ``request`` (an awaitable), record its latency under ``op``, and any error; None on failure."""
    started = time.perf_counter()
    try:
        response = await request
    except REQUEST_ERRORS as exc:
        result.errors[op].append(type(exc).__name__)
        return None
    result.latencies[op].append(time.perf_counter() - started)
    if response.is_error:
        result.errors[op].append(f"HTTP {response.status_code}")
        return None
    return response


async def _lag_monitor(until: float, result: LoadResult) -> None:
    """How late this process's own event loop wakes up: time the clients could not measure anything, because
    this process was waiting for a CPU. Part of every latency above, and none of it the service's."""
    while time.monotonic() < until:
        started = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_S)
        result.client_lag.append(max(0.0, time.perf_counter() - started - LAG_PROBE_S))


class _GcPauses:
    """A ``gc.callbacks`` entry that records how long each collection of this process took (seconds)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)


async def _pace(started: float, interval: float) -> None:
    if interval:
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))


async def _reader(client: Any, study_id: int, until: float, interval: float, result: LoadResult) -> None:
    async with client:
        await asyncio.sleep(random.uniform(0, interval))  # independent pollers are not in step with each other
        while time.monotonic() < until:
            started = time.perf_counter()
            await _timed(result, READ, client.get(f"{API}/studies/{study_id}"))
            await _pace(started, interval)


async def _submitter(client: Any, until: float, interval: float, result: LoadResult) -> None:
    async with client:
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < until:
            started = time.perf_counter()
            created = await _timed(result, SUBMIT, client.post(f"{API}/studies", json=SMALL_STUDY))
            if created is not None:
                await _timed(result, CANCEL, client.post(f"{API}/studies/{created.json()['id']}/cancel"))
            await _pace(started, interval)


def rss_bytes(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None


async def run_load(
    url: str,
    *,
    study_id: int,
    token: str | None = None,
    readers: int = 50,
    submitters: int = 5,
    duration: float = 60.0,
    interval: float = 0.2,
    submit_interval: float = 1.0,
    service_pid: int | None = None,
    client: str = "h11",
) -> LoadResult:
    """``readers`` status pollers and ``submitters`` submit-and-cancel clients against ``url`` for ``duration`` s,
    each an ``H11Client`` (``client="h11"``) or an ``httpx.AsyncClient`` (``client="httpx"``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # One client (so one keep-alive connection) per simulated user: one httpx pool shared by 50 tasks costs
    # several times more CPU per request here. One TLS context for all: each would load the CA bundle again.
    tls = ssl.create_default_context()
    clients = [make_client(client, url, headers, tls) for _ in range(readers + submitters)]
    result = LoadResult(duration_s=duration, rss_before=rss_bytes(service_pid), load_before=os.getloadavg()[0])
    # The clients' own full collections scanned every object this process imported (httpx, rich, optforge's
    # client) and paused all 50 clients for up to ~95 ms, 5 times a minute: latency that was the instrument's,
    # not the service's. Frozen, as the service freezes its start-up heap, they scan only what the load made.
    gc.collect()
    gc.freeze()
    watch = _GcPauses()
    gc.callbacks.append(watch)
    cpu_before = time.process_time()
    started = time.monotonic()
    until = started + duration
    try:
        await asyncio.gather(
            *(_reader(client, study_id, until, interval, result) for client in clients[:readers]),
            *(_submitter(client, until, submit_interval, result) for client in clients[readers:]),
            _lag_monitor(until, result),
        )
    finally:
        gc.callbacks.remove(watch)
        gc.unfreeze()
    result.client_gc = watch.pauses
    result.duration_s = time.monotonic() - started
    result.client_cpu_s = time.process_time() - cpu_before
    result.rss_after = rss_bytes(service_pid)
    result.load_after = os.getloadavg()[0]
    return result


def _progress(client: httpx.Client, study_id: int) -> dict[str, Any]:
    return client.get(f"{API}/studies/{study_id}").raise_for_status().json()["progress"]


def run_scenario(url: str, *, token: str | None = None, service_pid: int | None = None, **load: Any) -> LoadResult:
    """Submit the background study, wait until a trial trains, run the load (``run_load``'s keyword
    arguments), then cancel the study."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        study_id = client.post(f"{API}/studies", json=STUDY).raise_for_status().json()["id"]
        deadline = time.monotonic() + 300
        while _progress(client, study_id)["trials_running"] < 1:  # measure while trials train, not while Ray warms up
            if time.monotonic() > deadline:
                raise TimeoutError(f"study {study_id} had no running trial after 300 s")
            time.sleep(0.5)
        finished_before = _progress(client, study_id)["trials_finished"]
        result = asyncio.run(run_load(url, study_id=study_id, token=token, service_pid=service_pid, **load))
        result.trials_finished = _progress(client, study_id)["trials_finished"] - finished_before
        client.post(f"{API}/studies/{study_id}/cancel")
    return result


def run_local(*, checkout: Path | None = None, trial_nice: int | None = None, **load: Any) -> LoadResult:
    """``run_scenario`` against a fresh ``optforge serve``, run from ``checkout`` (default: this install)
    with its trial workers at ``trial_nice`` (default: Ray's own worker niceness)."""
    # PYTHONSAFEPATH: the service must import optforge from `checkout`, not from the current directory.
    env = {"PYTHONSAFEPATH": "1"}
    if trial_nice is not None:
        env["RAY_worker_niceness"] = str(trial_nice)  # read by the local Ray the service starts
    python_path = [checkout] if checkout is not None else []
    with LocalService(env=env, python_path=python_path) as service:
        assert service.process is not None
        return run_scenario(service.url, service_pid=service.process.pid, **load)


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}" if values else "-"


def report(result: LoadResult, title: str, console: Console) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("operation", "requests", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for op in (READ, SUBMIT, CANCEL):
        values, errors = result.latencies.get(op, []), result.errors.get(op, [])
        if not values and not errors:
            continue
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted({e: errors.count(e) for e in errors}.items()))
        table.add_row(
            op,
            str(len(values)),
            f"{len(values) / result.duration_s:.0f}",
            f"{len(errors)}" + (f" ({kinds})" if kinds else ""),
            _ms(values, 50),
            _ms(values, 95),
            _ms(values, 99),
            f"{max(values) * 1000:.1f}" if values else "-",
        )
    console.print(table)
    mb = 1 << 20
    if result.rss_before is not None and result.rss_after is not None:
        console.print(f"service RSS before / after: {result.rss_before / mb:.0f} / {result.rss_after / mb:.0f} MB")
    console.print(
        f"machine: {os.cpu_count()} CPUs, load average {result.load_before:.1f} before / {result.load_after:.1f} "
        f"after; these clients used {result.client_cpu_s / result.duration_s:.0%} of a CPU, and their own event loop "
        f"woke up late by {_ms(result.client_lag, 50)} ms (p50) / {_ms(result.client_lag, 99)} ms (p99), their "
        f"longest garbage-collection pause was {max(result.client_gc, default=0.0) * 1000:.1f} ms; "
        f"the study finished {result.trials_finished} trials meanwhile"
    )
    reads = result.latencies.get(READ, [])
    if reads:
        p99 = percentile(reads, 99) * 1000
        met = result.total_errors == 0 and p99 < TARGET_P99_MS
        console.print(
            f"target (issue 5): no errors and status-read p99 < {TARGET_P99_MS:.0f} ms: "
            + ("[green]met[/]" if met else "[red]not met[/]")
            + f" ({result.total_errors} errors, p99 {p99:.1f} ms at load average {result.load_after:.1f})"
        )


def compare(results: dict[str, list[LoadResult]], console: Console) -> None:
    """One row per variant, status-read latencies pooled over its rounds, ratios to the first variant."""
    table = Table(title=f"{READ}: variants side by side (ratios to the first)", title_justify="left")
    for column in ("variant", "rounds", "reads", "errors", "p50 ms", "p99 ms", "p50 ratio", "p99 ratio", "load avg"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    first: tuple[float, float] | None = None
    for name, runs in results.items():
        reads = [x for r in runs for x in r.latencies.get(READ, [])]
        p50, p99 = percentile(reads, 50), percentile(reads, 99)
        first = first or (p50, p99)
        table.add_row(
            name,
            str(len(runs)),
            str(len(reads)),
            str(sum(r.total_errors for r in runs)),
            f"{p50 * 1000:.1f}",
            f"{p99 * 1000:.1f}",
            f"{p50 / first[0]:.2f}",
            f"{p99 / first[1]:.2f}",
            ", ".join(f"{r.load_after:.1f}" for r in runs),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=50, help="concurrent status-polling clients")
    parser.add_argument("--submitters", type=int, default=5, help="concurrent clients submitting small studies")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    # 0.2 s: a status page or `study.wait()` polls once or twice a second; 5/s per client is a hard poll.
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between one reader's polls (0: no pause)")
    # 1 s: one submission a second per submitter is far more than people submit, and keeps it a load test.
    parser.add_argument("--submit-interval", type=float, default=1.0, help="seconds between one submitter's studies")
    parser.add_argument("--url", help="an already running service (default: start one per variant)")
    parser.add_argument("--token", default=os.environ.get("OPTFORGE_TOKEN"), help="API token for --url")
    parser.add_argument(
        "--trial-nice", type=int, nargs="+", help="run once per value with Ray's workers at that niceness (default 15)"
    )
    parser.add_argument(
        "--checkout", type=Path, action="append", help="run the service from this source tree (repeat to compare)"
    )
    parser.add_argument(
        "--client",
        nargs="+",
        choices=["h11", "httpx"],
        default=["h11"],
        help="the clients' HTTP library; several: run once per library (default h11, the cheaper instrument)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the variants, interleaved, this many times")
    args = parser.parse_args()
    load = {
        "readers": args.readers,
        "submitters": args.submitters,
        "duration": args.duration,
        "interval": args.interval,
        "submit_interval": args.submit_interval,
    }
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.url:
        for client in args.client:
            result = run_scenario(args.url, token=args.token, client=client, **load)
            report(result, f"{args.url} under load, {client} clients", console)
        return
    variants = list(itertools.product(args.checkout or [None], args.trial_nice or [None], args.client))
    results: dict[str, list[LoadResult]] = defaultdict(list)
    for _round, (checkout, nice, client) in itertools.product(range(args.rounds), variants):
        name = " ".join(
            filter(
                None,
                [
                    str(checkout) if checkout else "",
                    f"trial nice {nice}" if nice is not None else "",
                    f"{client} clients" if len(args.client) > 1 else "",
                ],
            )
        )
        result = run_local(checkout=checkout.resolve() if checkout else None, trial_nice=nice, client=client, **load)
        results[name or "this checkout"].append(result)
        title = (
            f"{name or 'optforge serve'}: {args.readers} readers, {args.submitters} submitters, {args.duration:.0f} s"
        )
        report(result, title, console)
    if len(results) > 1 or args.rounds > 1:
        compare(results, console)


if __name__ == "__main__":
    main()
