"""The API's schemas for meta-training runs run as service jobs (``/api/v1/meta-runs``), shared by the
service and the SDK. Pydantic only, like :mod:`optforge.spec._api`, whose naming they follow; they live
here, next to :class:`~optforge.learned_opt.meta.spec.MetaTrainSpec` (the body of a submission), because
the spec layer sits below the learned optimizer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from optforge.learned_opt.meta.spec import MetaTrainSpec
from optforge.spec import StudyStatus
from optforge.spec._api import PublicModel


class MetaRunCreate(MetaTrainSpec):
    """The body of ``POST /meta-runs``: a MetaTrainSpec. The service keeps the run's files in its own data
    directory (``output_dir`` is replaced) and runs the pairs on its own Ray (``ray_address`` must be unset)."""


class MetaCheckpointPublic(PublicModel):
    """A stored checkpoint of the run's learned-optimizer weights (``LearnedWeights.from_bytes`` reads them)."""

    id: int
    step: int = Field(description="the outer step the weights are from")
    weights_format: str
    weights_sha256: str
    size_bytes: int
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class MetaRunPublic(PublicModel):
    """A meta-training run as the API shows it: what was asked, how far it got, and its checkpoints."""

    id: int
    name: str
    status: StudyStatus
    # A mapping, not a MetaTrainSpec: runs recorded by other optforge versions (or by hand) still list.
    spec: dict[str, Any]
    steps_done: int = Field(0, description="outer steps with a stored meta-loss point")
    total_steps: int | None = Field(None, description="outer steps the run asks for (spec.outer.steps)")
    last_meta_loss: float | None = Field(None, description="the PES meta-loss of the last stored outer step")
    last_metrics: dict[str, float] = Field(default_factory=dict, description="the last step's other metrics")
    resumed: int = Field(0, description="how many times the run was resumed after its worker stopped")
    error: str | None = None
    checkpoints: list[MetaCheckpointPublic] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status.finished


class MetaRunsPublic(PublicModel):
    """A page of meta-training runs, newest first; ``count`` is how many there are in all."""

    data: list[MetaRunPublic]
    count: int
