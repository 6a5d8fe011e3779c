"""Specs shared by the service, the SDK, the search and the engine. Imports pydantic, never torch.

``TaskSpec`` says what to train, ``TrialConfig`` how to train it once, ``StudySpec`` how to search.
"""

from optforge.spec._base import StrictModel
from optforge.spec._io import SpecError, field_errors, load_spec, read_mapping
from optforge.spec._study import (
    ProxySpec,
    SearchSpec,
    StudyEvent,
    StudyEventKind,
    StudySpec,
    TrialResources,
)
from optforge.spec._task import DataSpec, ModelSpec, TaskSpec
from optforge.spec._trial import MetricPoint, TrialConfig, TrialResult, TrialStatus

__all__ = [
    "DataSpec",
    "MetricPoint",
    "ModelSpec",
    "ProxySpec",
    "SearchSpec",
    "SpecError",
    "StrictModel",
    "StudyEvent",
    "StudyEventKind",
    "StudySpec",
    "TaskSpec",
    "TrialConfig",
    "TrialResources",
    "TrialResult",
    "TrialStatus",
    "field_errors",
    "load_spec",
    "read_mapping",
]
