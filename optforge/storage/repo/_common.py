"""Helpers shared by the repository modules: dialect-specific inserts, lookups, row → record conversion."""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from optforge.spec import MetricPoint, StudyRecord, StudySpec, TrialConfig, TrialRecord
from optforge.storage.errors import NotFound
from optforge.storage.models import Base, MetricPointRow, StudyRow, TrialRow

RowT = TypeVar("RowT", bound=Base)


def dialect_insert(session: Session, table: type[Base] | Table) -> Any:
    """``INSERT`` of the session's dialect, which offers ``on_conflict_do_nothing/do_update``."""
    name = session.get_bind().dialect.name
    return postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)


def get_row(session: Session, model: type[RowT], key: int, resource: str, *, for_update: bool = False) -> RowT:
    """The row with primary key ``key``, or NotFound naming ``resource``."""
    row = session.get(model, key, with_for_update=for_update or None)
    if row is None:
        raise NotFound(resource, f"id {key}")
    return row


def bump_study_counter(session: Session, column: Any, study_id: int, by: int = 1) -> int:
    """Add ``by`` to a counter column of the study and return its new value.

    ``UPDATE ... RETURNING`` takes the study row's lock until commit, so concurrent writers of one study
    get consecutive values in commit order (what the event stream's Last-Event-ID relies on). "fetch"
    refreshes a study row the session already holds, so records built from it later are current.
    """
    stmt = update(StudyRow).where(StudyRow.id == study_id).values({column: column + by}).returning(column)
    value = session.execute(stmt, execution_options={"synchronize_session": "fetch"}).scalar_one_or_none()
    if value is None:
        raise NotFound("study", f"id {study_id}")
    return int(value)


def fields_of(row: Base, model: type[BaseModel], **overrides: Any) -> dict[str, Any]:
    """The attributes of ``row`` that ``model`` has fields for, with ``overrides`` replacing some."""
    out = {name: getattr(row, name) for name in model.model_fields if name not in overrides and hasattr(row, name)}
    out.update(overrides)
    return out


def study_record(row: StudyRow) -> StudyRecord:
    return StudyRecord(**fields_of(row, StudyRecord, spec=StudySpec.model_validate(row.spec)))


def trial_record(row: TrialRow, curve: list[MetricPoint] | None = None) -> TrialRecord:
    return TrialRecord(**fields_of(row, TrialRecord, config=TrialConfig.model_validate(row.config), curve=curve or []))


# Table columns, not ORM attributes: a Core SELECT skips the ORM's per-row processing (a third of a
# 10k-point read).
_POINTS_TABLE = MetricPointRow.__table__.c
POINT_COLUMNS = (
    _POINTS_TABLE.step,
    _POINTS_TABLE.train_loss,
    _POINTS_TABLE.val_loss,
    _POINTS_TABLE.val_accuracy,
    _POINTS_TABLE.lr,
    _POINTS_TABLE.examples_per_s,
    _POINTS_TABLE.wall_time,
)


_POINTS = TypeAdapter(list[MetricPoint])
_POINT_KEYS = ("step", "train_loss", "val_loss", "val_accuracy", "lr", "examples_per_s", "wall_time")
_REQUIRED = ("train_loss", "lr", "examples_per_s", "wall_time")  # NULL in these columns stands for NaN


def points_from_rows(rows: Iterable[Any]) -> list[MetricPoint]:
    """MetricPoints from rows of POINT_COLUMNS (one curve), validated in one pydantic call.

    One list validation is several times faster than a model per point. Keep the list to one trial's
    curve, though: validating a whole study's points at once is slower again (allocation pressure).
    """
    dicts = []
    for values in rows:
        point = dict(zip(_POINT_KEYS, values, strict=True))
        for key in _REQUIRED:
            if point[key] is None:
                point[key] = math.nan
        dicts.append(point)
    return _POINTS.validate_python(dicts)


def curves_by_trial(
    session: Session, *, study_id: int | None = None, trial_id: int | None = None
) -> dict[int, list[MetricPoint]]:
    """Metric points of one trial or of every trial of a study, by trial id, in one query."""
    trials = TrialRow.__table__.c
    stmt = select(_POINTS_TABLE.trial_id, *POINT_COLUMNS)
    if trial_id is not None:
        stmt = stmt.where(_POINTS_TABLE.trial_id == trial_id)
    if study_id is not None:
        stmt = stmt.join_from(MetricPointRow.__table__, TrialRow.__table__, trials.id == _POINTS_TABLE.trial_id)
        stmt = stmt.where(trials.study_id == study_id)
    rows = session.execute(stmt.order_by(_POINTS_TABLE.trial_id, _POINTS_TABLE.step)).all()
    with gc_paused():
        return {key: points_from_rows(row[1:] for row in group) for key, group in groupby(rows, key=itemgetter(0))}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many small objects at once.

    A 10k-point read allocates a few objects per point; the burst triggers full collections, which walk
    every object in the process (a service process holds millions) and, measured, double the read's
    time. Nothing built here forms reference cycles, so the pause frees nothing late. Re-enables only what
    it disabled, so nesting and a caller's own gc.disable() are respected.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
