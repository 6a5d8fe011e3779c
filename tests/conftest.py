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
