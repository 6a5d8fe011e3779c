"""run_trial: it trains, reports, stops on divergence or pruning, never raises mid-training, and is deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optforge.engine import lr_factor, run_trial
from optforge.spec import MetricPoint, SpecError, TaskSpec, TrialConfig, TrialStatus


@pytest.fixture(autouse=True)
def _usercode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**changes: object) -> TaskSpec:
    """A task that trains in a few hundredths of a second."""
    fields: dict = {
        "model": {"name": "mlp", "width": 16, "depth": 2},
        "data": {"name": "iris"},
        "batch_size": 16,
        "steps": 30,
        "eval_every": 10,
    }
    fields.update(changes)
    return TaskSpec.model_validate(fields)


ADAMW = TrialConfig(family="adamw", hparams={"lr": 1e-2})


@pytest.mark.parametrize(
    "config",
    [
        ADAMW,
        TrialConfig(family="sgd", hparams={"lr": 0.1}),
        TrialConfig(family="lion", hparams={"lr": 1e-3}),
        TrialConfig(family="muon", hparams={"lr": 0.02, "adamw_lr": 1e-2}),
    ],
    ids=lambda c: c.family,
)
def test_a_trial_completes_and_lowers_the_validation_loss(config: TrialConfig) -> None:
    result = run_trial(tiny(), config)
    assert result.status == TrialStatus.COMPLETED, result.error
    assert [p.step for p in result.curve] == [10, 20, 30] and result.steps == 30
    assert result.curve[-1].val_loss < result.curve[0].val_loss
    assert result.final == result.curve[-1].val_loss and result.best == min(p.val_loss for p in result.curve)
    assert all(0 <= p.val_accuracy <= 1 and p.examples_per_s > 0 for p in result.curve)


def test_the_result_records_what_was_run() -> None:
    result = run_trial(tiny(), ADAMW)
    info = result.info
    assert info["hparams"]["lr"] == 1e-2 and info["hparams"]["beta2"] == TrialConfig().resolved_hparams()["beta2"]
    assert info["schedule"] == "cosine" and "warmup_fraction" in info["schedule_params"]
    assert info["n_params"] == sum((i * o + o) for i, o in ((4, 16), (16, 16), (16, 3)))
    assert info["device"] == result.device == "cpu" and info["torch"] == torch.__version__
    assert info["code_version"] and info["data"]["name"] == "iris"


def test_reported_lr_is_the_scheduled_lr_of_that_step() -> None:
    config = TrialConfig(
        family="adamw", hparams={"lr": 1e-2}, schedule="linear", schedule_params={"warmup_fraction": 0.2}
    )
    result = run_trial(tiny(), config)
    for point in result.curve:
        expected = 1e-2 * lr_factor("linear", {"warmup_fraction": 0.2}, point.step - 1, 30)
        assert point.lr == pytest.approx(expected)


def test_cpu_runs_are_bit_identical_for_a_seed_and_differ_across_seeds() -> None:
    def losses(seed: int) -> list[tuple[float, float | None]]:
        return [(p.train_loss, p.val_loss) for p in run_trial(tiny(seed=seed), ADAMW).curve]

    assert losses(3) == losses(3)
    assert losses(3) != losses(4)


def test_the_callers_random_state_is_left_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_trial(tiny(), ADAMW)
    assert torch.equal(torch.rand(3), expected)


def test_a_huge_learning_rate_diverges_instead_of_raising() -> None:
    config = TrialConfig(family="sgd", hparams={"lr": 1e4}, schedule="constant", schedule_params={"warmup_fraction": 0})
    result = run_trial(tiny(steps=100), config)
    assert result.status == TrialStatus.DIVERGED
    assert result.steps < 100 and "initial loss" in (result.error or "")


def test_a_nan_loss_is_divergence() -> None:
    task = tiny(data={"entrypoint": "usercode_example:make_nan_data"})
    result = run_trial(task, ADAMW)
    assert result.status == TrialStatus.DIVERGED and result.steps == 1 and "nan" in (result.error or "")


def test_report_sees_every_evaluation_and_can_prune() -> None:
    seen: list[tuple[int, MetricPoint]] = []

    def report(step: int, point: MetricPoint) -> bool:
        seen.append((step, point))
        return step >= 20

    result = run_trial(tiny(), ADAMW, report)
    assert result.status == TrialStatus.PRUNED and result.steps == 20
    assert [s for s, _ in seen] == [10, 20] and [p for _, p in seen] == result.curve


def test_an_exception_during_training_fails_the_trial_with_its_traceback() -> None:
    task = tiny(model={"entrypoint": "usercode_example:make_failing_model"})
    result = run_trial(task, ADAMW)
    assert result.status == TrialStatus.FAILED and 0 < result.steps < 30
    assert "Traceback" in (result.error or "") and "broke mid-training" in (result.error or "")


def _reference_curve() -> list[MetricPoint]:
    return run_trial(tiny(steps=60), ADAMW).curve


def test_time_to_target_is_the_first_evaluation_at_the_target() -> None:
    curve = _reference_curve()
    target = curve[2].val_loss
    first = next(p for p in curve if p.val_loss <= target)
    result = run_trial(tiny(steps=60, target=target), ADAMW)
    assert result.step_reached_target == first.step
    assert result.seconds_reached_target is not None and result.seconds_reached_target > 0


def test_time_to_target_respects_a_maximized_metric() -> None:
    curve = _reference_curve()
    target = max(p.val_accuracy for p in curve)
    first = next(p for p in curve if p.val_accuracy >= target)
    result = run_trial(tiny(steps=60, target=target, metric="val_accuracy"), ADAMW)
    assert result.best == target and result.step_reached_target == first.step


def test_an_unreached_target_leaves_the_fields_empty() -> None:
    result = run_trial(tiny(target=1e-9), ADAMW)
    assert result.step_reached_target is None and result.seconds_reached_target is None


def test_accuracy_on_regression_is_bad_input_raised_before_training() -> None:
    with pytest.raises(SpecError) as info:
        run_trial(tiny(data={"name": "diabetes"}, metric="val_accuracy"), ADAMW)
    assert info.value.errors[0][0] == "metric"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_one_is_bad_input() -> None:
    with pytest.raises(SpecError, match="device"):
        run_trial(tiny(device="cuda"), ADAMW)


def test_a_transformer_trial_on_text_reports_token_accuracy() -> None:
    task = TaskSpec(
        model={"name": "transformer", "width": 16, "depth": 1},
        data={"name": "text", "seq_len": 16, "max_chars": 4000},
        batch_size=8,
        steps=10,
        eval_every=5,
        max_eval_examples=16,
    )
    result = run_trial(task, TrialConfig(family="adamw", hparams={"lr": 3e-3}))
    assert result.status == TrialStatus.COMPLETED, result.error
    assert result.curve[-1].val_loss < result.curve[0].val_loss and result.curve[-1].val_accuracy is not None


def test_regression_trials_have_no_accuracy() -> None:
    result = run_trial(tiny(data={"name": "diabetes"}), ADAMW)
    assert result.status == TrialStatus.COMPLETED and all(p.val_accuracy is None for p in result.curve)
