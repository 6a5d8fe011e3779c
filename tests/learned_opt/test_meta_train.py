"""`optforge meta-train` end to end at toy size: it writes its files, resumes exactly, and Ray agrees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from optforge.cli.app import app
from optforge.learned_opt import LearnedWeights, MetaTrainer, MetaTrainSpec, StandardLO
from optforge.learned_opt.meta.record import LOG, JsonlLog, read_log
from optforge.learned_opt.meta.workers import InProcess, RayPool
from optforge.spec import MetaLossPoint

from .tiny import TINY


def spec_file(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "meta.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp_path / "run"), **changes}))
    return path


class Crash(Exception):
    pass


def crash_after(step: int):
    def on_step(done: int, total: int, point: MetaLossPoint) -> None:
        if done == step:
            raise Crash

    return on_step


def test_meta_train_cli_writes_its_files_and_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["meta-train", str(spec)])
    assert first.exit_code == 0, first.output
    assert {"checkpoint.pt", "meta_loss.jsonl", "meta_loss.png", "weights.pt", "summary.json"} <= {
        p.name for p in out.iterdir()
    }
    assert [p.step for p in read_log(out / "meta_loss.jsonl")] == [0, 1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outer_steps"] == 2 and summary["cpu_hours"] >= 0 and summary["eval_meta_loss_first"] is not None

    again = CliRunner().invoke(app, ["meta-train", str(spec)])
    assert again.exit_code != 0 and "--resume" in again.output  # never overwrite a run silently
    longer = CliRunner().invoke(app, ["meta-train", str(spec), "--resume", "--steps", "3"])  # a run may be extended
    assert longer.exit_code == 0, longer.output
    assert [p.step for p in read_log(out / "meta_loss.jsonl")] == [0, 1, 2, 3]


def test_a_crashed_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    changes = {"outer": {**TINY["outer"], "steps": 4}, "checkpoint_every": 2}
    spec = spec_file(tmp_path, **changes)
    out = tmp_path / "run"
    crashed = MetaTrainer(
        MetaTrainSpec.model_validate(yaml.safe_load(spec.read_text())), callbacks=[JsonlLog(out / LOG)]
    )
    with pytest.raises(Crash):
        crashed.run(on_step=crash_after(3))  # step 3 is logged, but the last checkpoint is step 2's
    assert [p.step for p in read_log(out / LOG)] == [0, 1, 2, 3]

    resumed = CliRunner().invoke(app, ["meta-train", str(spec), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert [p.step for p in read_log(out / LOG)] == [0, 1, 2, 3, 4]  # step 3 redone once, not twice

    straight = MetaTrainSpec.model_validate({**TINY, **changes, "output_dir": str(tmp_path / "straight")})
    uninterrupted = MetaTrainer(straight).run()
    resumed_weights = LearnedWeights.load(out / "weights.pt")
    for name, value in uninterrupted.weights.network.items():
        assert torch.equal(value, resumed_weights.network[name]), name
    assert resumed_weights.info["outer_steps"] == 4


def test_the_final_weights_load_into_the_matching_optimizer(tmp_path: Path) -> None:
    spec = MetaTrainSpec.model_validate({**TINY, "parametrization": "sp", "output_dir": str(tmp_path / "sp")})
    result = MetaTrainer(spec).run()
    weights = LearnedWeights.load(result.weights_path)
    assert weights.parametrization == "sp" and weights.name == "tiny"
    StandardLO([torch.nn.Parameter(torch.zeros(3))], weights=result.weights_path)


def test_a_bad_spec_exits_2_naming_the_field(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["meta-train", str(spec_file(tmp_path, outer={"sigma": -1}))])
    assert result.exit_code == 2 and "outer.sigma" in result.output


class Recorder:
    def __init__(self) -> None:
        self.points: list[MetaLossPoint] = []
        self.checkpoints: list[int] = []

    def on_point(self, point: MetaLossPoint) -> None:
        self.points.append(point)

    def on_checkpoint(self, step: int, weights: LearnedWeights, metrics: dict[str, float]) -> None:
        assert weights.to_bytes()  # what storage.save_checkpoint receives
        self.checkpoints.append(step)


@pytest.mark.usefixtures("ray_session")
def test_pairs_spread_over_ray_workers_give_the_same_run_as_in_process(tmp_path: Path) -> None:
    # One pair and one evaluation task: one Ray worker to start (importing torch there is most of the cost).
    outer = {**TINY["outer"], "steps": 1, "n_tasks": 1}
    spec = MetaTrainSpec.model_validate({**TINY, "output_dir": str(tmp_path / "ray"), "outer": outer})
    recorder = Recorder()
    on_ray = MetaTrainer(spec, callbacks=[recorder], executor=RayPool(workers=2)).run()
    local = MetaTrainer(spec.model_copy(update={"output_dir": str(tmp_path / "local")}), executor=InProcess()).run()
    for name, value in local.weights.network.items():
        assert torch.equal(value, on_ray.weights.network[name]), name
    assert [p.step for p in recorder.points] == [0, 1] and recorder.checkpoints == [1]
    assert on_ray.cpu_seconds > 0
