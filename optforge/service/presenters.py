"""Stored records → the API's public schemas. Pure functions: no I/O, no clock except ``now``."""

from __future__ import annotations

from datetime import UTC, datetime

from optforge.spec import BestConfigRecord, StudyRecord, StudyStatus, TaskSpec, TrialRecord
from optforge.spec._api import (
    BestPublic,
    BestSoFar,
    RecommendationPublic,
    SeedStats,
    StudyProgress,
    StudyPublic,
    TrialPublic,
)
from optforge.spec.snippet import pytorch_snippet


def study_public(
    study: StudyRecord,
    *,
    owner: str | None = None,
    running: int = 0,
    best: TrialRecord | None = None,
    now: datetime | None = None,
) -> StudyPublic:
    """The API view of ``study``, with its running-trial count and best trial so far (see ``best_trial``)."""
    finished = min(study.trials_finished, study.trials_total) if study.trials_total else study.trials_finished
    progress = StudyProgress(
        trials_total=study.trials_total,
        trials_finished=study.trials_finished,
        trials_running=running,
        fraction=min(1.0, finished / study.trials_total) if study.trials_total else 0.0,
    )
    elapsed = None
    if study.started_at is not None:
        end = study.finished_at or now or datetime.now(UTC)
        elapsed = max(0.0, (end - study.started_at).total_seconds())
    return StudyPublic(
        id=study.id,
        name=study.name,
        owner=owner,
        status=study.status,
        spec=study.spec,
        progress=progress,
        best=BestSoFar(
            trial_id=best.id,
            family=best.config.family,
            schedule=best.config.schedule,
            metric=best.metric or study.spec.task.metric,
            value=best.final,  # type: ignore[arg-type]
        )
        if best is not None
        else None,
        error=study.error,
        cancel_requested=study.cancel_requested and study.status == StudyStatus.RUNNING,
        resumed=max(0, study.claim_count - 1),
        created_at=study.created_at,
        started_at=study.started_at,
        finished_at=study.finished_at,
        elapsed_s=elapsed,
    )


def trial_public(trial: TrialRecord) -> TrialPublic:
    return TrialPublic.model_validate(trial.model_dump(exclude={"curve"}))


def seed_stats(best: BestConfigRecord) -> SeedStats:
    return SeedStats(n=best.n, mean=best.mean, std=best.std, seeds=list(best.seeds))


def snippet_for(best: BestConfigRecord, *, source: str) -> str:
    """The PyTorch snippet for a stored best configuration, headed by where it came from (for a μTransfer
    study: confirmed at the target width, tuned at the proxy width)."""
    task: TaskSpec = best.task
    spread = f" ± {best.std:.4g}" if best.std is not None else ""
    transfer = f", tuned at width {best.proxy_width} (μTransfer)" if best.proxy_width is not None else ""
    header = (
        f"optforge {source}: {best.config.family} + {best.config.schedule} schedule\n"
        f"{best.metric} {best.mean:.6g}{spread} over {best.n} seed(s) ({best.mode}imize); "
        f"model {task.model.name or task.model.entrypoint} width {best.target_width or task.model.width}{transfer}"
    )
    return pytorch_snippet(best.config, total_steps=task.steps, header=header)


def best_public(best: BestConfigRecord) -> BestPublic:
    return BestPublic(
        study_id=best.study_id,
        rank=best.rank,
        metric=best.metric,
        mode=best.mode,
        config=best.config,
        task=best.task,
        stats=seed_stats(best),
        proxy_width=best.proxy_width,
        target_width=best.target_width,
        snippet=snippet_for(best, source=f"study {best.study_id}, rank {best.rank}"),
    )


def recommendation_public(best: BestConfigRecord, *, distance: float, exact: bool) -> RecommendationPublic:
    return RecommendationPublic(
        study_id=best.study_id,
        distance=distance,
        exact=exact,
        metric=best.metric,
        mode=best.mode,
        config=best.config,
        task=best.task,
        stats=seed_stats(best),
    )
