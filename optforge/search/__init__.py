"""The search: a conditional space over optimizer families and schedules, Optuna proposing, Ray Tune running.

``run_study(spec, reporter=...)`` runs a whole study and returns a ranked :class:`StudyResult`; every
trial and study-level event goes to ``reporter`` (see :mod:`optforge.search.recorder` for payloads).
This package never imports the database layer. Ray and Optuna are imported lazily, so reading the
result models costs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optforge.search.results import SeedSummary, StudyResult, TrialSummary

if TYPE_CHECKING:
    from optforge.search.runner import connect_ray, run_study, validate_study
    from optforge.search.space import SearchSpace

__all__ = [
    "SearchSpace",
    "SeedSummary",
    "StudyResult",
    "TrialSummary",
    "connect_ray",
    "run_study",
    "validate_study",
]

_LAZY = {
    "SearchSpace": "optforge.search.space",
    "connect_ray": "optforge.search.runner",
    "run_study": "optforge.search.runner",
    "validate_study": "optforge.search.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optforge.search' has no attribute {name!r}")
