"""Metric points: the time series of a trial, one row per (trial, step).

Writes are batched: ``insert_metric_points`` sends all its points through one INSERT statement executed
for many rows in one round of driver calls, and a point already stored for that (trial, step) is skipped
(ON CONFLICT DO NOTHING), so replaying a curve after a restart neither duplicates nor fails. Reads walk the
(trial_id, step) primary key.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from optforge.spec import MetricPoint
from optforge.storage.errors import translating
from optforge.storage.models import MetricPointRow, TrialRow
from optforge.storage.repo._common import POINT_COLUMNS, dialect_insert, points_from_rows


@translating
def insert_metric_points(session: Session, /, *, trial_id: int, points: Sequence[MetricPoint]) -> int:
    """Store ``points`` of the trial; returns how many were new. NotFound if the trial does not exist.

    Points whose step is already stored for this trial are left as they are (first write wins).
    """
    if not points:
        return 0
    rows = [
        {
            "trial_id": trial_id,
            "step": p.step,
            "train_loss": p.train_loss,
            "val_loss": p.val_loss,
            "val_accuracy": p.val_accuracy,
            "lr": p.lr,
            "examples_per_s": p.examples_per_s,
            "wall_time": p.wall_time,
        }
        for p in points
    ]
    # One cached statement executed for many rows: the driver batches them (SQLite's executemany loop in C,
    # psycopg's pipeline). Compiling a literal multi-row VALUES instead costs more than the insert itself.
    stmt = dialect_insert(session, MetricPointRow.__table__).on_conflict_do_nothing()
    # preserve_rowcount: SQLAlchemy reports INSERT row counts only when asked to.
    return session.execute(stmt, rows, execution_options={"preserve_rowcount": True}).rowcount


@translating
def get_curve(session: Session, /, *, trial_id: int, after_step: int | None = None) -> list[MetricPoint]:
    """The trial's points in step order; only those after ``after_step`` if given (for live updates)."""
    table = MetricPointRow.__table__.c
    stmt = select(*POINT_COLUMNS).where(table.trial_id == trial_id)
    if after_step is not None:
        stmt = stmt.where(table.step > after_step)
    return points_from_rows(session.execute(stmt.order_by(table.step)))


@translating
def count_metric_points(session: Session, /, *, trial_id: int | None = None, study_id: int | None = None) -> int:
    """How many points are stored: of one trial, of one study, or (neither given) in all."""
    stmt = select(func.count()).select_from(MetricPointRow)
    if trial_id is not None:
        stmt = stmt.where(MetricPointRow.trial_id == trial_id)
    if study_id is not None:
        stmt = stmt.join(TrialRow, TrialRow.id == MetricPointRow.trial_id).where(TrialRow.study_id == study_id)
    return session.scalar(stmt) or 0
