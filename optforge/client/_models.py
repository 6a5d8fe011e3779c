"""Response models the SDK adds to the shared API schemas (:mod:`optforge.spec._api`).

``Best`` is ``BestPublic`` with :meth:`Best.build`; ``StudyEventPublic`` is one message of the live
stream, read leniently (the stored event model rejects unknown fields; a client must not break when a
newer service adds one).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import Field

from optforge.spec import StudyEventKind
from optforge.spec._api import BestPublic, PublicModel

ENGINE_INSTALL_HINT = 'pip install "optforge[all]"'


class Built(NamedTuple):
    """What :meth:`Best.build` returns: ``optimizer, scheduler = best.build(model)``."""

    optimizer: Any  # torch.optim.Optimizer (typed Any: the SDK never imports torch)
    scheduler: Any  # torch.optim.lr_scheduler.LRScheduler


class Best(BestPublic):
    """A study's best configuration (``config``, ``task``, seed ``stats``, PyTorch ``snippet``), ready to use."""

    def build(self, model: Any, *, total_steps: int | None = None) -> Built:
        """A ready ``torch.optim`` optimizer and LR scheduler for ``model``, exactly as optforge trained them.

        ``total_steps`` is the schedule's horizon: by default the ``task.steps`` the configuration was tuned
        for; pass your own run's length to stretch the schedule (the peak LR stays as tuned). Call
        ``scheduler.step()`` after each ``optimizer.step()``. Weight decay goes to weight matrices only, and
        composite families (Muon + AdamW...) route each parameter as in the search.

        Families with stepping quirks need a little more than ``optimizer.step()``: schedule-free families
        want ``optimizer.eval()`` around evaluation and Hessian families ``backward(create_graph=True)``;
        ``optforge.engine.optimizers.make_stepper`` and ``evaluation_mode`` handle both.

        Needs the engine (torch, pytorch-optimizer), imported here and not before.
        """
        try:
            from optforge.engine.optimizers import build_optimizer
            from optforge.engine.schedules import build_scheduler
        except ImportError as exc:
            raise ImportError(
                f"Best.build needs optforge's training engine (torch, pytorch-optimizer), which is not installed "
                f"here ({exc}); install it with: {ENGINE_INSTALL_HINT}. Without it, paste best.snippet instead."
            ) from exc
        steps = total_steps if total_steps is not None else self.task.steps
        if steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {steps}")
        optimizer = build_optimizer(model, self.config, total_steps=steps)
        return Built(optimizer, build_scheduler(optimizer, self.config, steps))

    def summary(self) -> str:
        """One line: family + schedule, the metric's mean ± std over seeds; for a μTransfer study also the width
        it was confirmed at (the seeds ran there) and the proxy width it was tuned at."""
        spread = f" ± {self.stats.std:.4g}" if self.stats.std is not None else ""
        widths = (
            f" at width {self.target_width}, tuned at width {self.proxy_width} (μTransfer)"
            if self.proxy_width is not None and self.target_width is not None
            else ""
        )
        return (
            f"{self.config.family} + {self.config.schedule}: {self.metric} {self.stats.mean:.6g}{spread} "
            f"over {self.stats.n} seed(s){widths}"
        )


class StudyEventPublic(PublicModel):
    """One event of a study's live stream; ``id`` increases by one per event (the stream resumes after it)."""

    id: int
    study_id: int
    kind: StudyEventKind | str = Field(description="trial_started, trial_result, best_changed, finished...")
    trial_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    time: float = 0.0
