"""Best configurations are filed by task fingerprint; ``recommend`` returns exact matches, then nearest tasks."""

from __future__ import annotations

import pytest
from storage_helpers import config

from optforge.spec import BestConfigCreate, StudySpec, TaskSpec
from optforge.storage import NotFound, repo
from optforge.storage.fingerprint import distance, task_features


def _task(width: int = 128, depth: int = 2, data: str = "digits", steps: int = 200, seed: int = 0) -> TaskSpec:
    return TaskSpec.model_validate(
        {"model": {"name": "mlp", "width": width, "depth": depth}, "data": {"name": data}, "steps": steps, "seed": seed}
    )


def _best(lr: float, mean: float, family: str = "adamw") -> BestConfigCreate:
    return BestConfigCreate(
        config=config(lr=lr, family=family), metric="val_loss", mode="min", mean=mean, std=0.01, n=3, seeds=[0, 1, 2]
    )


def _study_with_best(s, task: TaskSpec, best: list[BestConfigCreate], name: str = "s") -> int:
    study = repo.studies.create_study(s, spec=StudySpec(name=name, task=task))
    repo.best.save_best_configs(s, study_id=study.id, configs=best)
    return study.id


def test_best_configs_round_trip_in_rank_order(storage, study):
    best = [
        _best(1e-3, 0.3),
        BestConfigCreate(
            config=config(lr=2e-2, family="sgd"),
            metric="val_loss",
            mode="min",
            mean=0.35,
            n=1,
            proxy_width=64,
            target_width=1024,
        ),
    ]
    with storage.session() as s:
        saved = repo.best.save_best_configs(s, study_id=study.id, configs=best, param_count=10_000)
    with storage.session(readonly=True) as s:
        loaded = repo.best.list_best_configs(s, study_id=study.id)
    assert loaded == saved
    assert [b.rank for b in loaded] == [0, 1]
    assert [b.model_dump(include=set(BestConfigCreate.model_fields)) for b in loaded] == [b.model_dump() for b in best]
    assert loaded[0].fingerprint == study.fingerprint and loaded[0].task == study.spec.task


def test_saving_again_replaces_the_studys_best(storage, study):
    with storage.session() as s:
        repo.best.save_best_configs(s, study_id=study.id, configs=[_best(1e-3, 0.3), _best(2e-3, 0.4)])
        repo.best.save_best_configs(s, study_id=study.id, configs=[_best(5e-3, 0.2)])
        assert [b.mean for b in repo.best.list_best_configs(s, study_id=study.id)] == [0.2]


def test_best_of_a_missing_study_is_not_found(storage):
    with storage.session() as s, pytest.raises(NotFound):
        repo.best.save_best_configs(s, study_id=404, configs=[_best(1e-3, 0.3)])


def test_recommend_puts_exact_matches_first_then_the_nearest_task(storage):
    near_task, far_task, exact_task = _task(width=256), _task(width=64, depth=8, data="wine"), _task(width=128, seed=5)
    with storage.session() as s:
        _study_with_best(s, far_task, [_best(9e-3, 0.9)], "far")
        _study_with_best(s, near_task, [_best(3e-3, 0.5), _best(4e-3, 0.6)], "near")
        _study_with_best(s, exact_task, [_best(1e-3, 0.4)], "exact")
    query = _task(width=128)
    with storage.session(readonly=True) as s:
        recs = repo.best.recommend(s, task=query, limit=4)
    assert [r.best.config.hparams["lr"] for r in recs] == [1e-3, 3e-3, 4e-3, 9e-3]
    assert [r.exact for r in recs] == [True, False, False, False]
    assert recs[0].distance == 0.0
    assert recs[1].distance == pytest.approx(distance(task_features(query), task_features(near_task)))
    assert 0 < recs[1].distance == recs[2].distance < recs[3].distance


def test_recommend_picks_the_nearest_of_several_tasks(storage):
    """A constructed example: the stored task one width-doubling away beats one 16x away and another dataset."""
    with storage.session() as s:
        for width, lr in [(2048, 1e-4), (64, 2e-3), (512, 5e-4)]:
            _study_with_best(s, _task(width=width), [_best(lr, 0.5)], f"w{width}")
        _study_with_best(s, _task(width=256, data="breast_cancer"), [_best(7e-3, 0.1)], "other-data")
    with storage.session(readonly=True) as s:
        [rec] = repo.best.recommend(s, task=_task(width=256), limit=1)
    assert rec.best.task.model.width == 512 and rec.best.config.hparams["lr"] == 5e-4
    assert not rec.exact and rec.distance > 0


def test_recommend_filters_families_and_excludes_a_study(storage):
    with storage.session() as s:
        own = _study_with_best(s, _task(), [_best(1e-3, 0.3)], "own")
        _study_with_best(s, _task(), [_best(2e-2, 0.3, family="sgd"), _best(2e-3, 0.4)], "other")
    with storage.session(readonly=True) as s:
        sgd_only = repo.best.recommend(s, task=_task(), families=["sgd"])
        not_own = repo.best.recommend(s, task=_task(), exclude_study_id=own)
        empty = repo.best.recommend(s, task=_task(), families=["lion"])
    assert [r.best.config.family for r in sgd_only] == ["sgd"]
    assert own not in {r.best.study_id for r in not_own} and len(not_own) == 2
    assert empty == []
