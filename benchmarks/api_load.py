"""API load: concurrent clients poll a study's status while the study runs, on loopback.

    python benchmarks/api_load.py                  # 50 clients for 60 s against a fresh `optforge serve`
    python benchmarks/api_load.py --duration 15    # a shorter run
    python benchmarks/api_load.py --url http://127.0.0.1:8000 --token of_...   # an already running service

It starts ``optforge serve`` (SQLite, local Ray, open mode on loopback) in a temporary data directory,
submits a study big enough to keep training for the whole run, then ``--clients`` clients, each on its own
keep-alive connection, poll ``GET /api/v1/studies/{id}`` every ``--interval`` seconds (0: back to back,
which measures saturation rather than polling). It prints requests/s, latency percentiles and the error
count, and the service's resident memory before and after. Target (issue 5): no errors and p99 < 100 ms
on a 2-core machine.

The clients speak HTTP/1.1 through h11 on asyncio streams rather than through httpx: httpx's async
connection pool itself slows down with 50 connections (measured: 45 requests/s against a trivial
endpoint that h11 clients drive at 560/s), which would measure the client instead of the service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h11
import httpx

STUDY = {
    "name": "api-load",
    "task": {"model": {"name": "mlp", "width": 32}, "data": {"name": "digits"}, "steps": 400, "eval_every": 20},
    "search": {"n_trials": 200, "families": ["adamw", "lion", "sgd"], "warm_start": False},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def start_service(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "OPTFORGE_DATA_DIR": str(data_dir)}
    log = (data_dir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "optforge.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"optforge serve exited: see {data_dir / 'serve.log'}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("optforge serve did not become ready in 180 s")


async def poll(
    host: str,
    port: int,
    target: str,
    headers: list[tuple[str, str]],
    interval: float,
    until: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    """One client: a keep-alive connection polling ``target`` until ``until``."""
    reader, writer = await asyncio.open_connection(host, port)
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=target, headers=[("Host", host), *headers])
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
            status = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionError("the server closed the connection")
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    break
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"HTTP {status}")
            conn.start_next_cycle()
            if interval:
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
    except (OSError, h11.ProtocolError) as exc:
        errors.append(type(exc).__name__)
    finally:
        writer.close()


async def load(
    url: str, token: str | None, study_id: int, clients: int, duration: float, interval: float
) -> tuple[list[float], list[str], float]:
    parsed = httpx.URL(url)
    headers = [("Authorization", f"Bearer {token}")] if token else []
    latencies: list[float] = []
    errors: list[str] = []
    started = time.monotonic()
    until = started + duration
    target = f"/api/v1/studies/{study_id}"
    await asyncio.gather(
        *(
            poll(parsed.host, parsed.port or 80, target, headers, interval, until, latencies, errors)
            for _ in range(clients)
        )
    )
    return latencies, errors, time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent polling clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    # 0.2 s: a status page or `study.wait()` polls once or twice a second; 5/s per client is a hard poll.
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between one client's polls (0: no pause)")
    parser.add_argument("--url", help="an already running service (default: start one)")
    parser.add_argument("--token", default=os.environ.get("OPTFORGE_TOKEN"), help="API token for --url")
    args = parser.parse_args()

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="optforge-api-load-")
    try:
        if args.url:
            url = args.url
        else:
            proc, url = start_service(Path(tmp.name))
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            study = client.post("/api/v1/studies", json=STUDY).raise_for_status().json()
            while client.get(f"/api/v1/studies/{study['id']}").json()["progress"]["trials_running"] < 1:
                time.sleep(0.5)  # measure while trials train, not while Ray warms up
            rss_before = rss_mb(proc.pid if proc else None)
            latencies, errors, elapsed = asyncio.run(
                load(url, args.token, study["id"], args.clients, args.duration, args.interval)
            )
            rss_after = rss_mb(proc.pid if proc else None)
            final = client.get(f"/api/v1/studies/{study['id']}").json()
            client.post(f"/api/v1/studies/{study['id']}/cancel")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        tmp.cleanup()

    ms = sorted(x * 1000 for x in latencies)
    rows = [
        ("clients", f"{args.clients}"),
        ("poll interval per client", f"{args.interval} s"),
        ("duration", f"{elapsed:.1f} s"),
        ("requests", f"{len(ms)}"),
        ("requests/s", f"{len(ms) / elapsed:.0f}"),
        ("latency p50", f"{percentile(ms, 50):.1f} ms"),
        ("latency p90", f"{percentile(ms, 90):.1f} ms"),
        ("latency p99", f"{percentile(ms, 99):.1f} ms"),
        ("latency max", f"{ms[-1]:.1f} ms"),
        ("errors", f"{len(errors)}" + (f" ({', '.join(sorted(set(errors)))})" if errors else "")),
        ("trials finished meanwhile", f"{final['progress']['trials_finished']}"),
    ]
    if rss_before is not None and rss_after is not None:
        rows.append(("service RSS before / after", f"{rss_before:.0f} / {rss_after:.0f} MB"))
    width = max(len(k) for k, _ in rows)
    print(f"\nGET /api/v1/studies/{{id}} under load ({os.cpu_count()} CPUs)")
    print(f"| {'metric'.ljust(width)} | value |")
    print(f"| {'-' * width} | ----- |")
    for key, value in rows:
        print(f"| {key.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
