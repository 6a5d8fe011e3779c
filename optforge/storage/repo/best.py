"""Best configurations: what each study learned, and ``recommend`` for the next task.

A study stores its ranked best configurations under its task's fingerprint and feature vector
(``optforge.storage.fingerprint``). ``recommend(task)`` returns exact fingerprint matches first, then
the configurations of the nearest stored tasks, each with its distance.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from optforge.spec import BestConfigCreate, BestConfigRecord, Recommendation, StudySpec, TaskSpec, TrialConfig
from optforge.storage._types import json_safe, utcnow
from optforge.storage.errors import translating
from optforge.storage.fingerprint import TaskFeatures, distance, task_features, task_fingerprint
from optforge.storage.models import BestConfigRow, StudyRow
from optforge.storage.repo._common import fields_of, get_row


def _record(row: BestConfigRow) -> BestConfigRecord:
    return BestConfigRecord(
        **fields_of(
            row, BestConfigRecord, config=TrialConfig.model_validate(row.config), task=TaskSpec.model_validate(row.task)
        )
    )


@translating
def save_best_configs(
    session: Session,
    /,
    *,
    study_id: int,
    configs: Sequence[BestConfigCreate],
    param_count: int | None = None,
) -> list[BestConfigRecord]:
    """Replace the study's best configurations with ``configs`` (best first: rank 0, 1, ...).

    They are filed under the study's task; ``param_count`` (if the caller knows the model's size) sharpens
    later ``recommend`` distances. Saving again (a later phase, a restart) replaces, never appends.
    """
    study = get_row(session, StudyRow, study_id, "study", for_update=True)
    task = StudySpec.model_validate(study.spec).task
    fingerprint = task_fingerprint(task)
    features = task_features(task, param_count=param_count).to_dict()
    session.execute(delete(BestConfigRow).where(BestConfigRow.study_id == study_id))
    now = utcnow()
    rows = [
        BestConfigRow(
            study_id=study_id,
            rank=rank,
            fingerprint=fingerprint,
            features=features,
            task=task.model_dump(mode="json"),
            family=item.config.family,
            config=item.config.model_dump(mode="json"),
            metric=item.metric,
            mode=item.mode,
            mean=item.mean,
            std=item.std,
            n=item.n,
            seeds=json_safe(list(item.seeds)),
            proxy_width=item.proxy_width,
            target_width=item.target_width,
            created_at=now,
        )
        for rank, item in enumerate(configs)
    ]
    session.add_all(rows)
    session.flush()
    return [_record(row) for row in rows]


@translating
def list_best_configs(session: Session, /, *, study_id: int) -> list[BestConfigRecord]:
    """The study's best configurations, best first (empty until the study saved some)."""
    stmt = select(BestConfigRow).where(BestConfigRow.study_id == study_id).order_by(BestConfigRow.rank)
    return [_record(row) for row in session.scalars(stmt)]


@translating
def recommend(
    session: Session,
    /,
    *,
    task: TaskSpec,
    limit: int = 5,
    param_count: int | None = None,
    families: Sequence[str] | None = None,
    exclude_study_id: int | None = None,
) -> list[Recommendation]:
    """The stored configurations most likely to train ``task`` well, at most ``limit``.

    Exact fingerprint matches come first (distance 0; each study's rank, newest study first), then
    configurations of other tasks by increasing ``fingerprint.distance``. ``families`` keeps only those
    optimizer families (a study that searches a subset); ``exclude_study_id`` leaves a study's own results out.
    """
    fingerprint = task_fingerprint(task)
    features = task_features(task, param_count=param_count)
    # Scoring needs only the small columns; full rows are loaded for the winners alone.
    stmt = select(
        BestConfigRow.id, BestConfigRow.fingerprint, BestConfigRow.features, BestConfigRow.rank, BestConfigRow.study_id
    )
    if families is not None:
        stmt = stmt.where(BestConfigRow.family.in_(list(families)))
    if exclude_study_id is not None:
        stmt = stmt.where(BestConfigRow.study_id != exclude_study_id)
    scored: list[tuple[bool, float, int, int, int]] = []
    for row_id, row_fingerprint, row_features, rank, study_id in session.execute(stmt):
        exact = row_fingerprint == fingerprint
        d = 0.0 if exact else distance(features, TaskFeatures.from_dict(row_features))
        scored.append((not exact, d, rank, -study_id, row_id))
    scored.sort()  # exact matches, then nearer tasks, then better rank, then newer study
    winners = scored[:limit]
    rows = {
        r.id: r for r in session.scalars(select(BestConfigRow).where(BestConfigRow.id.in_([w[4] for w in winners])))
    }
    return [
        Recommendation(best=_record(rows[row_id]), distance=d, exact=not inexact)
        for inexact, d, _, _, row_id in winners
    ]
