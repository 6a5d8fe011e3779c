"""User code: a model or data function named in the spec trains; a broken one is named in the error."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from optforge.engine import EntryPointError, build_model, load_data, run_trial
from optforge.engine.data import clear_data_cache
from optforge.spec import DataSpec, SpecError, TaskSpec, TrialConfig, TrialStatus, load_spec

ADAMW = TrialConfig(family="adamw", hparams={"lr": 1e-2})


@pytest.fixture(autouse=True)
def _usercode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    clear_data_cache()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend on a busy CI machine
    yield
    torch.set_num_threads(threads)


def task(model: dict, data: dict | None = None, **fields: object) -> TaskSpec:
    return TaskSpec.model_validate(
        {"model": model, "data": data or {"name": "iris"}, "batch_size": 16, "steps": 20, "eval_every": 10, **fields}
    )


def test_a_user_model_is_built_with_the_offered_sizes_and_its_own_kwargs() -> None:
    spec = task({"entrypoint": "usercode_example:make_model", "width": 12, "kwargs": {"layers": 2}})
    model = build_model(spec, load_data(spec.data))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 12), (12, 12), (12, 3)]


def test_a_user_model_trains_like_a_builtin_one() -> None:
    result = run_trial(task({"entrypoint": "usercode_example:make_model", "width": 16}), ADAMW)
    assert result.status == TrialStatus.COMPLETED, result.error
    assert result.curve[-1].val_loss < result.curve[0].val_loss
    assert result.info["model"] == "Sequential"


def test_user_data_as_x_and_y_is_split_with_the_data_seed() -> None:
    spec = DataSpec(entrypoint="usercode_example:make_blobs", kwargs={"n": 100}, val_fraction=0.2)
    data = load_data(spec)
    assert (data.kind, data.n_train, data.n_val, data.n_outputs) == ("classification", 80, 20, 2)
    assert not torch.equal(data.x_train, load_data(spec, seed=1).x_train)
    result = run_trial(task({"name": "mlp", "width": 8}, spec.model_dump(exclude_defaults=True)), ADAMW)
    assert result.status == TrialStatus.COMPLETED and result.curve[-1].val_accuracy > 0.8


def test_user_data_with_its_own_split_as_tensors() -> None:
    data = load_data(DataSpec(entrypoint="usercode_example:make_presplit"))
    assert (data.kind, data.n_train, data.n_val, data.n_outputs) == ("regression", 96, 32, 1)


def test_user_token_data_trains_a_user_language_model() -> None:
    spec = task(
        {"entrypoint": "usercode_example:make_char_model", "width": 8}, {"entrypoint": "usercode_example:make_tokens"}
    )
    result = run_trial(spec, ADAMW)
    assert result.status == TrialStatus.COMPLETED, result.error
    assert result.info["data"]["kind"] == "lm" and result.curve[-1].val_loss < result.curve[0].val_loss


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
        ("usercode_example:make_nothing", "usercode_example.*make_nothing"),
        ("usercode_example:make_model_raising", "usercode_example:make_model_raising raised RuntimeError"),
        ("usercode_example:make_not_a_model", "usercode_example:make_not_a_model returned dict"),
        ("usercode_example:make_model_wrong_outputs", r"usercode_example:make_model_wrong_outputs.*\(2, 3\)"),
    ],
)
def test_a_broken_model_entry_point_is_raised_naming_module_and_function(model: str, message: str) -> None:
    with pytest.raises(EntryPointError, match=message) as info:
        run_trial(task({"entrypoint": model}), ADAMW)
    assert str(info.value).startswith("model.entrypoint")


def test_a_data_function_returning_the_wrong_thing_is_named() -> None:
    with pytest.raises(EntryPointError, match=r"data\.entrypoint: usercode_example:make_data_bad_keys.*'x' and 'y'"):
        run_trial(task({"name": "mlp"}, {"entrypoint": "usercode_example:make_data_bad_keys"}), ADAMW)


def test_a_builtin_model_that_cannot_read_user_data_is_bad_input() -> None:
    with pytest.raises(SpecError, match="transformer"):
        run_trial(task({"name": "transformer"}, {"entrypoint": "usercode_example:make_blobs"}), ADAMW)


def test_a_malformed_entry_point_is_rejected_by_the_spec() -> None:
    with pytest.raises(ValueError, match=r"package\.module:function"):
        task({"entrypoint": "just_a_name"})


def _doc_examples() -> dict[str, str]:
    """The code blocks of docs/engine.md marked ``<!-- example: NAME -->``, by file name."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "engine.md").read_text()
    pattern = re.compile(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)
    return dict(pattern.findall(doc))


def test_the_documented_user_code_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _doc_examples()
    assert set(examples) == {"my_models.py", "my_task.yaml"}
    for name, text in examples.items():
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    spec = load_spec(TaskSpec, tmp_path / "my_task.yaml").model_copy(update={"steps": 100, "eval_every": 50})
    result = run_trial(spec, TrialConfig(family="adamw", hparams={"lr": 3e-3}))
    sys.modules.pop("my_models", None)
    assert result.status == TrialStatus.COMPLETED, result.error
    assert result.info["data"]["n_train"] + result.info["data"]["n_val"] == 1024  # data.kwargs reached the function
    assert result.curve[-1].val_accuracy > 0.6
