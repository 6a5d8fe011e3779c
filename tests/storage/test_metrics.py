"""Metric points are written in batches, replayed without duplicates, and read in step order."""

from __future__ import annotations

import pytest
from storage_helpers import config, points

from optforge.storage import NotFound, repo


@pytest.fixture
def trial(storage, study):
    with storage.session() as s:
        return repo.trials.upsert_trial(s, study_id=study.id, key="t", config=config())


def test_points_round_trip_in_step_order(storage, trial):
    curve = points(25)
    with storage.session() as s:
        assert repo.metrics.insert_metric_points(s, trial_id=trial.id, points=list(reversed(curve))) == 25
    with storage.session(readonly=True) as s:
        assert repo.metrics.get_curve(s, trial_id=trial.id) == curve


def test_replayed_points_are_skipped_and_counted_as_not_new(storage, trial):
    with storage.session() as s:
        repo.metrics.insert_metric_points(s, trial_id=trial.id, points=points(10))
    with storage.session() as s:
        new = repo.metrics.insert_metric_points(s, trial_id=trial.id, points=points(15))  # 0..14: 5 new
    with storage.session(readonly=True) as s:
        assert new == 5
        assert repo.metrics.count_metric_points(s, trial_id=trial.id) == 15


def test_batches_larger_than_one_statement_are_split_and_all_stored(storage, trial):
    with storage.session() as s:
        assert repo.metrics.insert_metric_points(s, trial_id=trial.id, points=points(2500)) == 2500
    with storage.session(readonly=True) as s:
        assert repo.metrics.count_metric_points(s, study_id=trial.study_id) == 2500


def test_curve_after_a_step_returns_only_newer_points(storage, trial):
    with storage.session() as s:
        repo.metrics.insert_metric_points(s, trial_id=trial.id, points=points(10))
        assert [p.step for p in repo.metrics.get_curve(s, trial_id=trial.id, after_step=6)] == [7, 8, 9]


def test_points_of_a_missing_trial_are_not_found(storage):
    with storage.session() as s, pytest.raises(NotFound):
        repo.metrics.insert_metric_points(s, trial_id=999, points=points(2))


def test_empty_batch_writes_nothing(storage, trial):
    with storage.session() as s:
        assert repo.metrics.insert_metric_points(s, trial_id=trial.id, points=[]) == 0
