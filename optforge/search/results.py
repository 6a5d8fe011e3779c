"""What a study hands back: every trial, ranked, the multi-seed re-runs, and the best configuration."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from optforge.spec import BestConfigCreate, MetricPoint, StrictModel, TrialConfig, TrialResult, TrialStatus

Phase = Literal["search", "reseed"]


class TrialSummary(StrictModel):
    """One trial as the study saw it: its configuration, seed and result (with its learning curve)."""

    trial_id: str = Field(description="Ray Tune's trial id, unique within the study")
    number: int = Field(description="0, 1, 2... in the order the trials started")
    phase: Phase = "search"
    seed: int
    config: TrialConfig
    result: TrialResult
    value: float | None = Field(None, description="the finite objective Optuna was told (minimized)")
    attempts: int = Field(1, description="1, or more when the trial raised and was retried")
    rank: int | None = Field(None, description="0 is the best of its phase")

    @property
    def status(self) -> TrialStatus:
        return self.result.status


class SeedSummary(StrictModel):
    """One top-k configuration re-run with extra seeds: its runs and their mean and standard deviation."""

    config: TrialConfig
    source_trial_id: str = Field(description="the search trial this configuration came from")
    trial_ids: list[str]
    seeds: list[int]
    values: list[float | None] = Field(description="each seed's final metric (None when it did not finish)")
    mean: float | None
    std: float | None = Field(description="sample standard deviation over seeds (None for one seed)")
    rank: int


class StudyResult(StrictModel):
    """The outcome of :func:`optforge.search.run_study`."""

    name: str
    status: Literal["completed", "cancelled"]
    metric: str
    mode: Literal["min", "max"]
    objective: Literal["final", "time_to_target"]
    trials: list[TrialSummary] = Field(description="search trials, best first")
    reseeds: list[TrialSummary] = Field(default_factory=list, description="the multi-seed re-runs")
    seed_groups: list[SeedSummary] = Field(default_factory=list, description="top-k configurations, best first")
    best_config: TrialConfig | None = Field(None, description="the best seed group's, else the best trial's")
    best_trial_id: str | None = None
    best_value: float | None = Field(None, description="the best metric (a mean over seeds when re-seeded)")
    best_std: float | None = None
    wall_time: float = 0.0
    storage_path: str | None = Field(None, description="where Ray Tune kept its experiment state")

    def counts(self) -> dict[str, int]:
        """How many search trials ended in each status."""
        out: dict[str, int] = {}
        for trial in self.trials:
            out[trial.status.value] = out.get(trial.status.value, 0) + 1
        return out

    @property
    def best(self) -> TrialSummary | None:
        """The best search trial, if any trial could be called best."""
        return next((t for t in self.trials if t.trial_id == self.best_trial_id), None)

    def best_configs(self, *, limit: int = 5) -> list[BestConfigCreate]:
        """The study's best configurations as storage records them (seed groups first, then single runs)."""
        out: list[BestConfigCreate] = []
        seen: set[str] = set()
        for group in self.seed_groups:
            if group.mean is None:
                continue
            out.append(
                BestConfigCreate(
                    config=group.config,
                    metric=self.metric,
                    mode=self.mode,
                    mean=group.mean,
                    std=group.std,
                    n=sum(v is not None for v in group.values),
                    seeds=group.seeds,
                )
            )
            seen.add(group.config.model_dump_json())
        for trial in self.trials:
            final = trial.result.final
            if trial.status != TrialStatus.COMPLETED or final is None or not math.isfinite(final):
                continue
            key = trial.config.model_dump_json()
            if key in seen:
                continue
            seen.add(key)
            out.append(
                BestConfigCreate(
                    config=trial.config, metric=self.metric, mode=self.mode, mean=final, n=1, seeds=[trial.seed]
                )
            )
        return out[:limit]


def result_from_points(
    points: list[MetricPoint],
    *,
    status: TrialStatus,
    metric: str,
    mode: Literal["min", "max"],
    error: str | None = None,
) -> TrialResult:
    """A TrialResult assembled in the driver from the points a trial reported, for trials whose own result
    never arrived (pruned or cancelled mid-run, or failed after its retries)."""
    values = [v for p in points if (v := p.metric(metric)) is not None and math.isfinite(v)]
    best = (min(values) if mode == "min" else max(values)) if values else None
    last = points[-1] if points else None
    return TrialResult(
        status=status,
        steps=last.step if last else 0,
        metric=metric,
        final=last.metric(metric) if last else None,
        best=best,
        curve=list(points),
        wall_time=last.wall_time if last else 0.0,
        error=error,
    )
