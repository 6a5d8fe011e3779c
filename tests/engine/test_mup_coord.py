"""The coordinate check: activation size stays flat across widths under μP and grows under SP; μP trials train."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from optforge.engine import run_trial
from optforge.engine.data import Dataset
from optforge.engine.mup.coord_check import coord_check, growth
from optforge.spec import TaskSpec, TrialConfig, TrialStatus

WIDTHS = (32, 64, 128, 256)  # an 8x range, base 32
STEPS = 3
# Adam at 1e-2 is a usable LR at the base width, and large enough for SP's width dependence to show
# from the first update on (a smaller LR leaves the init dominating the first steps).
ADAMW = TrialConfig(family="adamw", hparams={"lr": 1e-2}, schedule="constant")
TASK = TaskSpec.model_validate(
    {"model": {"name": "mlp", "depth": 3, "base_width": 32}, "data": {"name": "digits"}, "batch_size": 64}
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def records(digits: Dataset) -> list:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: the autouse fixture below is per test
    try:
        return coord_check(TASK, ADAMW, widths=WIDTHS, steps=STEPS, dataset=digits)
    finally:
        torch.set_num_threads(threads)


def test_every_layer_is_recorded_at_every_width_and_step(records: list) -> None:
    layers = {"input", "hidden.0", "hidden.1", "readout"}
    for param in ("sp", "mup"):
        seen = {(r.width, r.step, r.layer) for r in records if r.parametrization == param}
        assert seen == {(w, s, layer) for w in WIDTHS for s in range(STEPS + 1) for layer in layers}


def test_under_mup_activation_size_stays_flat_across_an_8x_width_range(records: list) -> None:
    for step in range(1, STEPS + 1):
        changes = growth(records, "mup", step=step)
        assert set(changes) == {"input", "hidden.0", "hidden.1", "readout"}
        for layer, change in changes.items():
            assert 0.5 <= change <= 2.0, f"μP: {layer} changes x{change:.2f} from width 32 to 256 at step {step}"


def test_under_sp_activation_size_grows_with_width(records: list) -> None:
    for step in range(1, STEPS + 1):
        changes = growth(records, "sp", step=step)
        assert changes["readout"] > 3.0, f"SP readout only x{changes['readout']:.2f} at step {step}"
        assert changes["hidden.1"] > changes["input"], "SP: later layers grow more than the first"


def test_at_the_base_width_and_initialization_sp_and_mup_agree(records: list) -> None:
    init = {(r.parametrization, r.layer): r.value for r in records if r.step == 0 and r.width == WIDTHS[0]}
    for layer in ("input", "hidden.0", "hidden.1", "readout"):
        assert init[("mup", layer)] == init[("sp", layer)], layer


def test_coord_check_command_writes_the_plot(tmp_path: Path) -> None:
    from optforge.cli.app import app

    spec = tmp_path / "task.yaml"
    spec.write_text("model: {name: mlp, depth: 2, base_width: 16}\ndata: {name: iris}\nbatch_size: 16\n")
    out = tmp_path / "coord.png"
    result = CliRunner().invoke(
        app, ["coord-check", str(spec), "--widths", "16,32,64", "--steps", "2", "--out", str(out), "--set", "lr=0.01"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "readout" in result.output and "μP" in result.output


def test_coord_check_command_names_bad_widths(tmp_path: Path) -> None:
    from optforge.cli.app import app

    spec = tmp_path / "task.yaml"
    spec.write_text("model: {name: mlp}\ndata: {name: iris}\n")
    result = CliRunner().invoke(app, ["coord-check", str(spec), "--widths", "64"])
    assert result.exit_code == 2
    assert "--widths" in result.output


def test_a_mup_trial_trains_end_to_end_and_lowers_the_loss(digits: Dataset) -> None:
    task = TaskSpec.model_validate(
        {
            "model": {"name": "mlp", "width": 128, "base_width": 32},
            "data": {"name": "digits"},
            "steps": 40,
            "eval_every": 20,
        }
    )
    result = run_trial(task, ADAMW.model_copy(update={"mup": True}), dataset=digits)
    assert result.status == TrialStatus.COMPLETED, result.error
    assert result.curve[-1].val_loss < result.curve[0].val_loss < 2.31  # below chance (ln 10) and falling
    assert result.info["mup"] is True and result.info["base_width"] == 32
