"""The JSON depth scan that runs before any request body is parsed."""

from __future__ import annotations

import json
import time

import pytest

from optforge.service.guard import json_depth


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": 2}]}', 3),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets inside strings do not nest
        (b'{"a\\"[[": "\\\\", "b": [[]]}', 3),  # escaped quotes and backslashes do not end a string early
        (b"[" * 50 + b"]" * 50, 50),
    ],
)
def test_depth_counts_nesting_outside_strings(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_depth_matches_the_parsed_structure_of_a_real_spec() -> None:
    spec = {"task": {"model": {"kwargs": {"x": [[1, 2], {"y": "]]]"}]}}}, "search": {"families": ["adamw"]}}
    assert json_depth(json.dumps(spec).encode()) == 6


def test_a_megabyte_of_brackets_is_scanned_quickly() -> None:
    started = time.perf_counter()
    assert json_depth(b"[]" * 500_000) == 1
    assert time.perf_counter() - started < 2.0  # generous for a loaded CI machine; ~0.1 s unloaded
