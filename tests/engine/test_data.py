"""Every data source: shapes and kinds, deterministic splits, train-only statistics, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from optforge.engine.data import clear_data_cache, load_data, split_indices
from optforge.engine.data.text import default_corpus
from optforge.spec import DataSpec, SpecError


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_data_cache()


@pytest.mark.parametrize(
    ("name", "kind", "input_shape", "n_outputs", "n_total"),
    [
        ("digits", "classification", (1, 8, 8), 10, 1797),
        ("breast_cancer", "classification", (30,), 2, 569),
        ("wine", "classification", (13,), 3, 178),
        ("iris", "classification", (4,), 3, 150),
        ("diabetes", "regression", (10,), 1, 442),
    ],
)
def test_bundled_sets_load_with_their_kind_shape_and_size(name, kind, input_shape, n_outputs, n_total) -> None:
    data = load_data(DataSpec(name=name, val_fraction=0.25))
    assert (data.kind, data.input_shape, data.n_outputs) == (kind, input_shape, n_outputs)
    assert data.n_train + data.n_val == n_total
    assert data.n_val == round(0.25 * n_total)


def test_split_is_a_seeded_partition_of_all_rows() -> None:
    train, val = split_indices(100, 0.3, seed=4)
    assert len(val) == 30
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again_train, _ = split_indices(100, 0.3, seed=4)
    other_train, _ = split_indices(100, 0.3, seed=5)
    assert np.array_equal(train, again_train)
    assert not np.array_equal(train, other_train)


@pytest.mark.parametrize("name", ["teacher_student_regression", "teacher_student_classification", "wine"])
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(name: str) -> None:
    spec = DataSpec(name=name, n_samples=256, n_features=6, n_classes=4)
    first = load_data(spec)
    clear_data_cache()
    second = load_data(spec)
    other = load_data(spec, seed=1)
    assert first is not second and torch.equal(first.x_train, second.x_train) and torch.equal(first.y_val, second.y_val)
    assert first.fingerprint == second.fingerprint
    assert not torch.equal(first.x_train, other.x_train)
    assert first.fingerprint != other.fingerprint


def test_features_are_standardized_with_train_statistics_only() -> None:
    data = load_data(DataSpec(name="breast_cancer"))
    assert torch.allclose(data.x_train.mean(0), torch.zeros(30), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(30), atol=1e-4)
    # The validation split is scaled by the train statistics, so its own mean is not exactly zero.
    assert data.x_val.mean(0).abs().max() > 1e-3


def test_regression_targets_are_standardized() -> None:
    data = load_data(DataSpec(name="diabetes"))
    assert data.y_train.shape == (data.n_train, 1)
    assert abs(float(data.y_train.mean())) < 1e-5 and abs(float(data.y_train.std(unbiased=False)) - 1) < 1e-4


def test_teacher_student_follows_the_requested_sizes() -> None:
    spec = DataSpec(name="teacher_student_classification", n_samples=600, n_features=9, n_classes=5, val_fraction=0.5)
    data = load_data(spec)
    assert data.input_shape == (9,) and data.n_outputs == 5 and data.n_train == data.n_val == 300
    counts = torch.bincount(torch.cat([data.y_train, data.y_val]), minlength=5)
    assert counts.min() > 600 / 5 / 3, f"classes should be roughly balanced, got {counts.tolist()}"


def _linear_fit_r2(name: str, difficulty: float) -> float:
    data = load_data(DataSpec(name=name, n_samples=2000, n_features=8, difficulty=difficulty))
    x = np.c_[data.x_train.numpy(), np.ones(data.n_train)]
    y = data.y_train.numpy()
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return 1 - float(((x @ coef - y) ** 2).mean() / y.var())


def test_higher_difficulty_makes_the_teacher_less_linear() -> None:
    assert _linear_fit_r2("teacher_student_regression", 0.5) > _linear_fit_r2("teacher_student_regression", 4.0) + 0.1


def test_default_text_is_the_pydoc_corpus_with_shifted_targets_and_positional_split() -> None:
    data = load_data(DataSpec(name="text", seq_len=16, max_chars=5000, val_fraction=0.2))
    corpus = default_corpus()[:5000]
    assert data.kind == "lm" and data.input_shape == (16,) and data.vocab == "".join(sorted(set(corpus)))
    assert data.n_outputs == len(data.vocab)
    assert torch.equal(data.x_train[:, 1:], data.y_train[:, :-1])

    def decode(ids: torch.Tensor) -> str:
        return "".join(data.vocab[i] for i in ids.tolist())

    assert decode(data.x_train[0]) == corpus[:16]
    assert decode(data.x_train[1]) == corpus[16:32]  # windows follow each other through the text
    assert decode(data.x_val[0]) == corpus[4000:4016]  # validation is the last 20%, never shuffled in


def test_text_from_a_user_file(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("abcab" * 400, encoding="utf-8")
    data = load_data(DataSpec(name="text", path=str(path), seq_len=8))
    assert data.vocab == "abc" and data.name == "text:corpus.txt"
    assert data.x_train.shape[1] == 8 and data.n_train > data.n_val > 0


def test_a_seq_len_longer_than_the_validation_text_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"data\.seq_len"):
        load_data(DataSpec(name="text", seq_len=900, max_chars=2000, val_fraction=0.1))


def test_npz_with_x_and_y_is_split_and_standardized(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, X=rng.normal(5.0, 3.0, size=(50, 3)), y=rng.integers(0, 3, size=50))
    data = load_data(DataSpec(name="arrays", path=str(path), val_fraction=0.2))
    assert (data.kind, data.n_train, data.n_val, data.input_shape) == ("classification", 40, 10, (3,))
    assert float(data.x_train.mean().abs()) < 1e-5


def test_npz_with_its_own_split_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "split.npz"
    images = np.random.default_rng(1).random((30, 2, 4, 4))
    np.savez(path, x_train=images[:20], y_train=np.linspace(0, 1, 20), x_val=images[20:], y_val=np.linspace(0, 1, 10))
    data = load_data(DataSpec(name="arrays", path=str(path)))
    assert (data.kind, data.n_train, data.n_val, data.input_shape) == ("regression", 20, 10, (2, 4, 4))


def test_npz_without_known_keys_lists_what_it_found(tmp_path: Path) -> None:
    path = tmp_path / "odd.npz"
    np.savez(path, inputs=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(SpecError, match=r"data\.path.*inputs.*labels"):
        load_data(DataSpec(name="arrays", path=str(path)))


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "a": rng.normal(size=40),
            "b": rng.normal(size=40),
            "label": rng.choice(["cat", "dog"], size=40),
            "price": rng.normal(size=40),
        }
    )


def test_csv_target_defaults_to_the_last_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame().drop(columns=["label"]).to_csv(path, index=False)
    data = load_data(DataSpec(name="arrays", path=str(path)))
    assert data.kind == "regression" and data.input_shape == (2,)


def test_csv_string_labels_become_classes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame().drop(columns=["price"]).to_csv(path, index=False)
    data = load_data(DataSpec(name="arrays", path=str(path), target="label"))
    assert data.kind == "classification" and data.n_outputs == 2 and data.input_shape == (2,)


def test_parquet_with_a_named_target_and_a_kind_override(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame = _frame().drop(columns=["label"])
    frame["bucket"] = np.arange(40) % 4
    frame.to_parquet(path)
    as_classes = load_data(DataSpec(name="arrays", path=str(path), target="bucket"))
    as_numbers = load_data(DataSpec(name="arrays", path=str(path), target="bucket", kwargs={"kind": "regression"}))
    assert (as_classes.kind, as_classes.n_outputs, as_classes.input_shape) == ("classification", 4, (3,))
    assert (as_numbers.kind, as_numbers.n_outputs) == ("regression", 1)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"target": "nope"}, "data.target"),
        ({"kwargs": {"shuffle": True}}, "data.kwargs.shuffle"),
        ({"kwargs": {"kind": "ranking"}}, "data.kwargs.kind"),
    ],
)
def test_bad_table_options_name_the_field(tmp_path: Path, spec: dict, field: str) -> None:
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(SpecError) as info:
        load_data(DataSpec(name="arrays", path=str(path), **spec))
    assert info.value.errors[0][0] == field


def test_non_numeric_features_are_rejected_with_their_names(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)  # 'label' is a string feature when 'price' is the target
    with pytest.raises(SpecError, match="label"):
        load_data(DataSpec(name="arrays", path=str(path)))


def test_missing_file_and_unknown_suffix_name_data_path(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.csv", tmp_path / "data.xlsx"):
        with pytest.raises(SpecError) as info:
            load_data(DataSpec(name="arrays", path=str(path)))
        assert info.value.errors[0][0] == "data.path"


def test_builtin_data_rejects_kwargs() -> None:
    with pytest.raises(SpecError, match=r"data\.kwargs"):
        load_data(DataSpec(name="iris", kwargs={"scale": 2}))


def test_loads_are_cached_per_process_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(20.0).reshape(10, 2), y=np.arange(10.0))
    spec = DataSpec(name="arrays", path=str(path))
    first = load_data(spec)
    assert load_data(spec) is first
    np.savez(path, x=np.arange(40.0).reshape(20, 2), y=np.arange(20.0))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = load_data(spec)
    assert changed is not first and changed.n_train + changed.n_val == 20


def test_a_corrupt_file_is_bad_input_naming_data_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(SpecError) as info:
        load_data(DataSpec(name="arrays", path=str(path)))
    assert info.value.errors[0][0] == "data.path" and "broken.npz" in info.value.errors[0][1]
