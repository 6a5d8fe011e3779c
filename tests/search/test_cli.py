"""``optforge tune``: a whole study from a YAML file, with --json and --out, on the session's local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("ray")

from optforge.cli.app import app
from optforge.search import StudyResult

pytestmark = pytest.mark.usefixtures("ray_session")

SPEC = {
    "name": "cli-smoke",
    "task": {"model": {"name": "mlp", "width": 16}, "data": {"name": "digits"}, "steps": 40, "eval_every": 20},
    "search": {"n_trials": 8, "families": ["adamw", "muon"], "schedules": ["cosine", "wsd"]},
}


def test_tune_json_and_out_write_results_and_a_learning_curve_plot(tmp_path: Path) -> None:
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    out = tmp_path / "out"
    run = CliRunner().invoke(app, ["tune", str(spec), "--json", "--out", str(out), "--trials", "3"])
    assert run.exit_code == 0, run.output
    printed = StudyResult.model_validate_json(run.stdout[run.stdout.index("{") :])
    assert len(printed.trials) == 3  # --trials overrides the spec's 8
    assert printed.best_config is not None
    saved = json.loads((out / "results.json").read_text())
    assert saved["best_trial_id"] == printed.best_trial_id
    png = (out / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000


def test_tune_rejects_a_bad_spec_naming_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "search": {**SPEC["search"], "sampler": "cmaes"}}))
    run = CliRunner().invoke(app, ["tune", str(spec)])
    assert run.exit_code == 2
    assert "search.sampler" in run.output and "single fixed family" in run.output
