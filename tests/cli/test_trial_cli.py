"""The CLI end to end: `optforge trial` trains and prints, bad input exits 2 naming the field, catalog listings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from optforge.catalog import FAMILIES, SCHEDULES
from optforge.cli.app import app
from optforge.spec import TrialResult, TrialStatus

ROOT = Path(__file__).resolve().parents[2]
TASK = {
    "model": {"name": "mlp", "width": 16, "depth": 1},
    "data": {"name": "iris"},
    "batch_size": 16,
    "steps": 40,
    "eval_every": 10,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend on a busy CI machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(TASK))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_trial_prints_the_curve_and_a_summary(spec_file: Path) -> None:
    code, out, _ = invoke(
        "trial",
        str(spec_file),
        "--family",
        "lion",
        "--set",
        "lr=3e-3",
        "--schedule",
        "wsd",
        "--schedule-set",
        "cooldown=linear",
    )
    assert code == 0, out
    for heading in ("step", "train loss", "val loss", "val acc", "lr"):
        assert heading in out
    assert "lion · wsd" in out and "completed after 40 steps" in out and "val_loss: final" in out


def test_trial_json_is_a_trial_result_with_the_requested_config(spec_file: Path) -> None:
    code, out, _ = invoke(
        "trial",
        str(spec_file),
        "--family",
        "lion",
        "--set",
        "lr=3e-4",
        "--set",
        "beta2=0.95",
        "--steps",
        "20",
        "--json",
    )
    assert code == 0, out
    result = TrialResult.model_validate_json(out)
    assert result.status == TrialStatus.COMPLETED and result.steps == 20
    assert result.info["family"] == "lion" and result.info["hparams"]["lr"] == 3e-4
    assert result.info["hparams"]["beta2"] == 0.95 and [p.step for p in result.curve] == [10, 20]


def test_a_study_spec_file_trains_its_task(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "task": TASK, "search": {"n_trials": 4}}))
    code, out, _ = invoke("trial", str(path), "--steps", "10", "--json")
    assert code == 0, out
    assert TrialResult.model_validate_json(out).steps == 10


def test_a_diverged_trial_is_a_result_not_an_error(spec_file: Path) -> None:
    code, out, _ = invoke("trial", str(spec_file), "--family", "sgd", "--set", "lr=1e4", "--schedule", "constant")
    assert code == 0
    assert "diverged" in out and "initial loss" in out


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--family", "lion", "--set", "momentum=0.9"], ["--set", "momentum"]),
        (["--set", "lr=-1"], ["--set", "lr"]),
        (["--family", "adamz"], ["--family", "adamz"]),
        (["--schedule", "wsd", "--schedule-set", "cooldown=cubic"], ["--schedule-set", "cooldown"]),
        (["--set", "lr"], ["--set", "NAME=VALUE"]),
        (["--steps", "0"], ["steps"]),
    ],
)
def test_bad_options_exit_2_naming_the_option_without_a_traceback(
    spec_file: Path, args: list[str], names: list[str]
) -> None:
    code, out, err = invoke("trial", str(spec_file), *args)
    assert code == 2
    for name in names:
        assert name in err
    assert "Traceback" not in out + err


def test_a_bad_spec_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TASK, "stpes": 10, "model": {"name": "mlp", "width": -3}}))
    code, out, err = invoke("trial", str(path))
    assert code == 2 and "stpes" in err and "model.width" in err and "Traceback" not in out + err


def test_a_missing_or_misnamed_spec_file_exits_2(tmp_path: Path) -> None:
    code, _, err = invoke("trial", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml" in err
    text = tmp_path / "task.txt"
    text.write_text(yaml.safe_dump(TASK))
    code, _, err = invoke("trial", str(text))
    assert code == 2 and ".yaml" in err and "task.txt" in err


def test_a_broken_user_model_exits_2_naming_the_function(tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump({**TASK, "model": {"entrypoint": "no_such_pkg_abc.models:make"}}))
    code, _, err = invoke("trial", str(path))
    assert code == 2 and "model.entrypoint" in err and "no_such_pkg_abc" in err


def test_families_lists_every_family_as_json_and_as_a_table() -> None:
    code, out, _ = invoke("families", "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["name"] for r in records] == list(FAMILIES)
    adamw = next(r for r in records if r["name"] == "adamw")
    assert adamw["library"] == FAMILIES["adamw"].library and {h["name"] for h in adamw["hparams"]} >= {"lr"}
    code, out, _ = invoke("families")
    assert code == 0 and all(name in out for name in FAMILIES)


def test_schedules_lists_every_schedule() -> None:
    code, out, _ = invoke("schedules", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == list(SCHEDULES)
    code, out, _ = invoke("schedules")
    assert code == 0 and all(name in out for name in SCHEDULES)


def test_every_example_spec_is_a_valid_task(tmp_path: Path) -> None:
    from optforge.cli.trial import load_task

    examples = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
    assert any(p.name == "digits_mlp.yaml" for p in examples)  # what `optforge demo` runs
    for path in examples:
        load_task(path, {})


def test_the_installed_entry_point_runs_without_loading_torch_for_listings() -> None:
    code = "import sys; from optforge.cli import main; sys.argv = ['optforge', 'schedules', '--json']; main()"
    probe = subprocess.run(
        [sys.executable, "-c", code + "; assert 'torch' not in sys.modules"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert probe.returncode == 0, probe.stderr
    assert [r["name"] for r in json.loads(probe.stdout)] == list(SCHEDULES)
