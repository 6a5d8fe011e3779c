"""Task fingerprints: equal for tasks that train the same way; distances grow with how different tasks are."""

from __future__ import annotations

import subprocess
import sys

import pytest

from optforge.spec import TaskSpec
from optforge.storage.fingerprint import TaskFeatures, distance, task_features, task_fingerprint


def _task(**changes) -> TaskSpec:
    base = {
        "model": {"name": "mlp", "width": 128, "depth": 2},
        "data": {"name": "digits"},
        "batch_size": 64,
        "steps": 200,
    }
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = base
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return TaskSpec.model_validate(base)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 3},
        {"device": "cpu"},
        {"eval_every": 5},
        {"max_eval_examples": 10},
        {"metric": "val_accuracy"},
        {"target": 0.1},
        {"data__n_samples": 999},  # not used by the bundled digits dataset
        {"data__seed": 4},
    ],
)
def test_fingerprint_ignores_what_does_not_change_training(change):
    assert task_fingerprint(_task(**change)) == task_fingerprint(_task())


@pytest.mark.parametrize(
    "change",
    [
        {"model__width": 256},
        {"model__depth": 3},
        {"model__name": "cnn"},
        {"model__kwargs": {"activation": "relu"}},
        {"data__name": "wine"},
        {"data__val_fraction": 0.3},
        {"batch_size": 32},
        {"steps": 400},
        {"precision": "bf16"},
    ],
)
def test_fingerprint_changes_with_what_changes_training(change):
    assert task_fingerprint(_task(**change)) != task_fingerprint(_task())


def test_synthetic_dataset_size_is_part_of_its_fingerprint_and_features():
    small = _task(data__name="teacher_student_regression", data__n_samples=1000)
    large = _task(data__name="teacher_student_regression", data__n_samples=8000)
    assert task_fingerprint(small) != task_fingerprint(large)
    assert (task_features(small).dataset_size, task_features(large).dataset_size) == (1000, 8000)


def test_entrypoint_dataset_keeps_every_field_but_its_seed():
    task = _task(data__name=None, data__entrypoint="my.module:load")
    assert task_fingerprint(
        _task(data__name=None, data__entrypoint="my.module:load", data__seed=9)
    ) == task_fingerprint(task)
    changed = _task(data__name=None, data__entrypoint="my.module:load", data__n_features=3)
    assert task_fingerprint(changed) != task_fingerprint(task)


def test_bundled_dataset_sizes_need_no_sklearn():
    assert task_features(_task()).dataset_size == 1797
    assert task_features(_task(data__name="iris")).dataset_size == 150


def test_distance_is_zero_to_itself_symmetric_and_grows_with_width_ratio():
    base = task_features(_task())
    double = task_features(_task(model__width=256))
    sixteen = task_features(_task(model__width=2048))
    assert distance(base, base) == 0
    assert distance(base, double) == distance(double, base) > 0
    assert distance(base, sixteen) == pytest.approx(4 * distance(base, double))


def test_another_dataset_is_farther_than_a_doubled_width():
    base = task_features(_task())
    assert distance(base, task_features(_task(data__name="wine"))) > distance(
        base, task_features(_task(model__width=256))
    )


def test_unknown_feature_on_one_side_counts_as_partly_different():
    known = TaskFeatures(
        model="mlp", dataset="digits", width=128, depth=2, batch_size=64, steps=200, param_count=10_000
    )
    unknown = TaskFeatures(model="mlp", dataset="digits", width=128, depth=2, batch_size=64, steps=200)
    assert distance(known, unknown) > 0 == distance(unknown, unknown)
    assert TaskFeatures.from_dict(known.to_dict()) == known


def test_fingerprint_module_does_not_import_torch():
    code = "import sys, optforge.storage.fingerprint; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
