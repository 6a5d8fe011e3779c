"""Load: status reads and submissions while a study trains, and the coalescing that keeps status reads cheap.

``test_service_under_load_*`` is the CI version of ``benchmarks/api_load.py`` (issue 11's "Load"): the same
``run_scenario`` against a real ``optforge serve`` subprocess, with fewer clients for ~10 s. It asserts no
errors and bounded memory, never a latency: timing targets belong to the benchmark, which prints them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from optforge.client.testing import LocalService
from optforge.service import create_app
from optforge.service.app import start_service
from optforge.service.summaries import CoalescedReads
from optforge.settings import Settings
from optforge.spec import StudySpec
from optforge.storage.database import Storage
from optforge.storage.repo import studies as studies_repo
from optforge.storage.repo import users as users_repo

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "api_load.py"
MB = 1 << 20


def load_benchmark() -> ModuleType:
    """``benchmarks/api_load.py`` as a module (benchmarks are scripts, not a package)."""
    pytest.importorskip("psutil", reason="the load benchmark reads the service's memory with psutil")
    spec = importlib.util.spec_from_file_location("api_load", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["api_load"] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# --- the CI version of the load benchmark -----------------------------------------------------------------


@pytest.mark.slow
def test_service_under_load_answers_every_read_and_submission_and_keeps_its_memory_bounded() -> None:
    bench = load_benchmark()
    readers, submitters = 10, 2
    with LocalService() as service:
        assert service.process is not None
        result = bench.run_scenario(
            service.url,
            service_pid=service.process.pid,
            readers=readers,
            submitters=submitters,
            duration=10.0,
            interval=0.2,
            submit_interval=1.0,
        )
    reads, submits, cancels = (result.latencies[op] for op in (bench.READ, bench.SUBMIT, bench.CANCEL))
    assert result.total_errors == 0, dict(result.errors)
    # Every client got answers: each reader polled, each submitter's studies were created and cancelled.
    assert len(reads) >= readers and len(submits) >= submitters
    assert len(cancels) == len(submits)
    assert result.rss_before is not None and result.rss_after is not None
    assert result.rss_after <= 1.5 * result.rss_before + 50 * MB, (
        f"service memory grew from {result.rss_before / MB:.0f} to {result.rss_after / MB:.0f} MB in 10 s of load"
    )


# --- coalesced status reads ---------------------------------------------------------------------------------


class Source:
    """A value that changes: each fetch returns the current version; ``gate`` holds fetches until set."""

    def __init__(self) -> None:
        self.version = 0
        self.fetches = 0
        self.gate = asyncio.Event()

    async def fetch(self) -> int:
        self.fetches += 1
        seen = self.version  # what the database held when the read began
        await self.gate.wait()
        return seen


async def settle() -> None:
    for _ in range(5):  # let the tasks already scheduled run up to their next real wait
        await asyncio.sleep(0)


def test_concurrent_reads_of_one_key_share_one_fetch() -> None:
    async def scenario() -> tuple[list[int], int]:
        source, reads = Source(), CoalescedReads[str, int]()
        source.gate.set()
        values = await asyncio.gather(*(reads.read("study", source.fetch) for _ in range(20)))
        return values, source.fetches

    values, fetches = asyncio.run(scenario())
    assert values == [0] * 20
    assert fetches == 1


def test_a_read_arriving_during_a_fetch_waits_for_the_next_fetch_and_never_sees_older_data() -> None:
    async def scenario() -> tuple[int, int, int, int]:
        source, reads = Source(), CoalescedReads[str, int]()
        first = asyncio.ensure_future(reads.read("study", source.fetch))
        await settle()  # the first fetch has begun and read version 0
        source.version = 1  # a write commits while that fetch is in flight
        later = [asyncio.ensure_future(reads.read("study", source.fetch)) for _ in range(2)]
        await settle()
        source.gate.set()
        a, b, c = await asyncio.gather(first, *later)
        return a, b, c, source.fetches

    first, second, third, fetches = asyncio.run(scenario())
    assert first == 0
    assert second == third == 1  # both arrived after the write: they share the next fetch, which sees it
    assert fetches == 2


def test_reads_of_different_keys_do_not_wait_for_each_other() -> None:
    async def scenario() -> int:
        held, free = Source(), Source()
        free.gate.set()
        reads = CoalescedReads[str, int]()
        blocked = asyncio.ensure_future(reads.read("a", held.fetch))
        await settle()
        value = await asyncio.wait_for(reads.read("b", free.fetch), timeout=5)
        held.gate.set()
        await blocked
        return value

    assert asyncio.run(scenario()) == 0


def test_a_caller_that_goes_away_does_not_cancel_the_fetch_others_share() -> None:
    async def scenario() -> tuple[int, int]:
        source, reads = Source(), CoalescedReads[str, int]()
        leaving = asyncio.ensure_future(reads.read("study", source.fetch))
        staying = asyncio.ensure_future(reads.read("study", source.fetch))
        await settle()
        leaving.cancel()
        await settle()
        source.gate.set()
        return await staying, source.fetches

    assert asyncio.run(scenario()) == (0, 1)


def test_a_failed_fetch_reaches_every_caller_that_shared_it_and_the_next_read_fetches_again() -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise ConnectionError("database restarting")
        return calls

    async def scenario() -> tuple[list[object], int]:
        reads = CoalescedReads[str, int]()
        shared = await asyncio.gather(*(reads.read("study", flaky) for _ in range(3)), return_exceptions=True)
        return shared, await reads.read("study", flaky)

    shared, after = asyncio.run(scenario())
    assert all(isinstance(outcome, ConnectionError) for outcome in shared)
    assert after == 2


# --- coalescing behind the API: one read for many pollers, and each caller's own ownership check ----------


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with Storage.open(f"sqlite:///{tmp_path / 'optforge.db'}") as storage:
        yield storage


def test_many_owners_polls_share_few_reads_while_another_user_still_gets_404(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = {}
    with storage.session() as session:
        for name in ("alice", "bob"):
            user = users_repo.create_user(session, name=name)
            tokens[name] = (user.id, users_repo.issue_token(session, user_id=user.id).token)
    spec = StudySpec.model_validate(load_benchmark().SMALL_STUDY)
    with storage.session() as session:
        study = studies_repo.create_study(session, spec=spec, owner_id=tokens["alice"][0])
    settings = Settings(data_dir=tmp_path, rate_limit_burst=1000)
    app = create_app(settings, storage=storage)
    # No lifespan (ASGITransport runs none): the state start-up would build, without Ray or the scheduler.
    app.state.optforge = start_service(settings, storage, run_scheduler=False)
    reads = 0
    real_get_study = studies_repo.get_study

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        return real_get_study(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(studies_repo, "get_study", counted)

    async def poll(name: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[name][1]}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(f"/api/v1/studies/{study.id}", headers=headers)

    async def scenario() -> list[httpx.Response]:
        return await asyncio.gather(*(poll("alice" if i % 2 else "bob") for i in range(40)))

    responses = asyncio.run(scenario())
    alice = [r for i, r in enumerate(responses) if i % 2]
    bob = [r for i, r in enumerate(responses) if not i % 2]
    assert {r.status_code for r in alice} == {200}
    assert {r.json()["id"] for r in alice} == {study.id} and {r.json()["owner"] for r in alice} == {"alice"}
    assert {r.status_code for r in bob} == {404}  # the shared read never leaks a study to another user
    assert reads < len(responses) / 4, f"{reads} database reads for {len(responses)} concurrent polls"
