"""Fixtures the engine tests share: the bundled datasets, and one torch thread for tiny models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from optforge.engine import load_data
from optforge.engine.data import Dataset
from optforge.spec import DataSpec


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread: on a busy 2-core CI machine, threads mostly wait on each other.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_data(DataSpec(name="digits"))


@pytest.fixture(scope="module")
def text() -> Dataset:
    return load_data(DataSpec(name="text", seq_len=16, max_chars=4000))
