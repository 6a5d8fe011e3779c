"""Learned-optimizer meta-training runs, meta-loss curves and weight checkpoints round-trip."""

from __future__ import annotations

import math
import os

import pytest

from optforge.spec import MetaLossPoint, StudyStatus
from optforge.storage import InvalidTransition, NotFound, StorageError, repo
from optforge.storage.models import CheckpointRow


def test_meta_run_and_its_curve_round_trip(storage):
    spec = {"tasks": ["mlp-digits"], "outer_steps": 100, "lr": 3e-4}
    curve = [
        MetaLossPoint(step=i, meta_loss=1.0 / (i + 1), wall_time=i * 0.5, metrics={"grad_norm": i}) for i in range(5)
    ]
    with storage.session() as s:
        run = repo.learned.create_meta_run(s, name="mulo-small", spec=spec)
        assert repo.learned.insert_meta_loss_points(s, run_id=run.id, points=curve) == 5
        assert repo.learned.insert_meta_loss_points(s, run_id=run.id, points=curve[:2]) == 0
        done = repo.learned.set_meta_run_status(s, run_id=run.id, status=StudyStatus.COMPLETED)
    with storage.session(readonly=True) as s:
        loaded = repo.learned.get_meta_run(s, run_id=run.id)
        listed = repo.learned.list_meta_runs(s, name="mulo-small")
    assert loaded.spec == spec and loaded.curve == curve
    assert loaded.status == StudyStatus.COMPLETED and done.finished_at is not None
    assert [r.id for r in listed] == [run.id] and listed[0].curve == []


def test_finished_meta_run_cannot_restart(storage):
    with storage.session() as s:
        run = repo.learned.create_meta_run(s, name="r", spec={})
        repo.learned.set_meta_run_status(s, run_id=run.id, status=StudyStatus.FAILED, error="OOM")
        assert repo.learned.get_meta_run(s, run_id=run.id).error == "OOM"
        with pytest.raises(InvalidTransition):
            repo.learned.set_meta_run_status(s, run_id=run.id, status=StudyStatus.RUNNING)


def test_nan_meta_loss_round_trips_as_nan(storage):
    with storage.session() as s:
        run = repo.learned.create_meta_run(s, name="r", spec={})
        repo.learned.insert_meta_loss_points(s, run_id=run.id, points=[MetaLossPoint(step=0, meta_loss=float("nan"))])
        assert math.isnan(repo.learned.get_meta_run(s, run_id=run.id).curve[0].meta_loss)


def test_checkpoint_weights_and_metadata_round_trip(storage):
    weights = os.urandom(100_000)
    with storage.session() as s:
        run = repo.learned.create_meta_run(s, name="r", spec={"a": 1})
        first = repo.learned.save_checkpoint(
            s, name="mulo", weights=b"old", spec={"hidden": 32}, step=10, run_id=run.id
        )
        saved = repo.learned.save_checkpoint(
            s, name="mulo", weights=weights, spec={"hidden": 32}, step=20, metrics={"meta_loss": 0.1}, run_id=run.id
        )
    with storage.session(readonly=True) as s:
        latest = repo.learned.latest_checkpoint(s, name="mulo")
        assert repo.learned.get_checkpoint(s, checkpoint_id=first.id) == first
        assert repo.learned.load_weights(s, checkpoint_id=saved.id) == weights
        assert [c.step for c in repo.learned.list_checkpoints(s, run_id=run.id)] == [10, 20]
    assert latest == saved
    assert (latest.size_bytes, latest.weights_format, latest.metrics) == (100_000, "safetensors", {"meta_loss": 0.1})


def test_corrupted_weights_are_detected(storage):
    from sqlalchemy import update

    with storage.session() as s:
        saved = repo.learned.save_checkpoint(s, name="m", weights=b"abc", spec={}, step=1)
        s.execute(update(CheckpointRow).where(CheckpointRow.id == saved.id).values(weights=b"abd"))
    with storage.session() as s, pytest.raises(StorageError, match="corrupt"):
        repo.learned.load_weights(s, checkpoint_id=saved.id)


def test_missing_checkpoint_is_not_found(storage):
    with storage.session() as s:
        with pytest.raises(NotFound, match="checkpoint with name 'nope'"):
            repo.learned.latest_checkpoint(s, name="nope")
        with pytest.raises(NotFound):
            repo.learned.load_weights(s, checkpoint_id=5)
