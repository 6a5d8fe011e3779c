"""Fixtures shared by the whole suite.

One Ray instance serves the whole test session (starting Ray costs seconds; tests must not each pay it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray for the test session, sized for a 2-core CI machine. Reuses one already running."""
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(
            num_cpus=int(os.environ.get("OPTFORGE_TEST_RAY_CPUS", "2")),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _metrics_export_port=None,
        )
        started = True
    yield
    if started:
        ray.shutdown()


# --- PostgreSQL -------------------------------------------------------------------------------------------
# One real PostgreSQL server for the whole session (optforge.testing.postgres: the distribution's
# binaries, a temporary directory, a free loopback port), or the server in OPTFORGE_TEST_POSTGRES_URL.
# Without either, tests that need it skip, unless OPTFORGE_REQUIRE_POSTGRES=1 (CI), where they fail.


@pytest.fixture(scope="session")
def _postgres() -> Iterator[tuple[str, object]]:
    pytest.importorskip("psycopg")
    from optforge.testing.postgres import PostgresUnavailable, postgres_required, postgres_url_for_tests

    context = postgres_url_for_tests()
    try:
        url, server = context.__enter__()
    except PostgresUnavailable as exc:
        if postgres_required():
            pytest.fail(f"OPTFORGE_REQUIRE_POSTGRES is set but no PostgreSQL server could be started: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url, server
    finally:
        context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres_url(_postgres: tuple[str, object]) -> str:
    """``postgresql+psycopg://`` URL of a database on a real PostgreSQL server, for the whole session."""
    return _postgres[0]


@pytest.fixture(scope="session")
def postgres_server(_postgres: tuple[str, object]) -> object:
    """The session's ``optforge.testing.postgres.PostgresServer`` (to ``restart()`` it, create databases).
    Skips when the server is an external one from OPTFORGE_TEST_POSTGRES_URL: that one is not ours to restart."""
    if _postgres[1] is None:
        pytest.skip("OPTFORGE_TEST_POSTGRES_URL names an external server, which tests must not restart")
    return _postgres[1]
