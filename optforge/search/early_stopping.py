"""Multi-fidelity early stopping: ASHA with rungs measured in optimizer steps.

Every trial's schedule spans its full budget (``task.steps``); rungs compare trials at equal step
counts. With ``early_stopping="wsd_branch"`` the rungs are the same, but each trial is judged at a rung
on a short cooldown branched off its current state (:mod:`optforge.search.branching`), so a trial
in a high-LR stable phase is not judged against one that has already decayed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ray.tune.schedulers import ASHAScheduler

from optforge.spec import SearchSpec, TaskSpec


@dataclass(frozen=True)
class Rungs:
    """Where ASHA compares trials. Empty when the budget is too short to stop anything early."""

    grace: int
    reduction_factor: int
    steps: tuple[int, ...]
    max_t: int

    @classmethod
    def plan(cls, task: TaskSpec, search: SearchSpec) -> Rungs:
        """Rungs at ``grace x rf^k`` steps, strictly below the budget, on evaluation steps.

        The grace period is ``grace_fraction x steps`` rounded up to a multiple of ``eval_every``, so
        every rung falls on a step where the trainer evaluates. Rungs stop *below* the budget: a rung
        at the last step would stop a trial that has already finished and lose its final report, so
        ASHA gets ``max_t = steps - 1`` (with ``stop_last_trials=False`` max_t only sets the rung count).
        """
        rf = search.reduction_factor
        every = task.eval_every
        grace = max(every, math.ceil(search.grace_fraction * task.steps / every) * every)
        max_t = task.steps - 1
        if search.early_stopping == "none" or grace > max_t:
            return cls(grace=grace, reduction_factor=rf, steps=(), max_t=max_t)
        n_rungs = int(math.log(max_t / grace) / math.log(rf) + 1)  # ASHA's own formula (one bracket)
        return cls(grace=grace, reduction_factor=rf, steps=tuple(grace * rf**k for k in range(n_rungs)), max_t=max_t)

    def scheduler(self) -> ASHAScheduler | None:
        """Ray Tune's ASHA on the ``step`` attribute (metric and mode come from the TuneConfig); None when
        there are no rungs."""
        if not self.steps:
            return None
        return ASHAScheduler(
            time_attr="step",
            max_t=self.max_t,
            grace_period=self.grace,
            reduction_factor=self.reduction_factor,
            brackets=1,
            stop_last_trials=False,
        )
