"""μP for user models: base shapes inferred by building the factory at two more widths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from optforge.engine import build_model, load_data, run_trial
from optforge.engine.mup import ReadoutMultiplier, lr_scales, mup_model, shapes_of
from optforge.spec import SpecError, TaskSpec, TrialConfig, TrialStatus

BASE = 8


@pytest.fixture(autouse=True)
def _usercode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # usercode_example.py, written as a user would
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: on a busy 2-core machine more threads only contend
    yield
    torch.set_num_threads(threads)


def _task(entrypoint: str, width: int, data: str = "iris", **model: object) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "model": {"entrypoint": entrypoint, "width": width, "base_width": BASE, **model},
            "data": {"name": data, **({"seq_len": 8, "max_chars": 2000} if data == "text" else {})},
            "batch_size": 16,
            "steps": 30,
            "eval_every": 10,
        }
    )


def test_base_shapes_are_inferred_from_the_factory_at_two_widths() -> None:
    task = _task("usercode_example:make_model", 4 * BASE, kwargs={"layers": 3})
    model = build_model(task, load_data(task.data), mup=True)
    shapes = shapes_of(model).params
    # Sequential: 0 Flatten, 1 Linear(4, w), 3 Linear(w, w), 5 Linear(w, w), 7 Linear(w, 3)
    assert shapes["1.weight"].base == (BASE, None)
    assert shapes["3.weight"].base == (BASE, BASE)
    assert shapes["7.weight"].base == (None, BASE)
    assert shapes["7.bias"].base == (None,)
    assert lr_scales(model, "adaptive")["3.weight"] == pytest.approx(1 / 4)
    assert lr_scales(model, "sgd")["7.weight"] == pytest.approx(4)


def test_the_user_readout_gets_the_output_multiplier_and_keeps_its_base_width_init() -> None:
    task = _task("usercode_example:make_model", 4 * BASE)
    data = load_data(task.data)
    torch.manual_seed(0)
    plain = build_model(task, data)
    torch.manual_seed(0)
    model = build_model(task, data, mup=True)
    readout = model[-1]
    assert torch.allclose(readout.weight, 2 * plain[-1].weight)  # x sqrt(fan-in multiplier 4)
    hooks = [h for h in readout._forward_pre_hooks.values() if isinstance(h, ReadoutMultiplier)]
    assert [h.mult for h in hooks] == [pytest.approx(1 / 4)]
    with torch.no_grad():
        readout.weight.fill_(1.0)
        readout.bias.zero_()
    hidden = model[:-1](data.x_train[:2])
    assert torch.allclose(model(data.x_train[:2]), hidden.sum(dim=1, keepdim=True).expand(-1, 3) / 4)


def test_the_zero_readout_option_zeroes_a_user_readout() -> None:
    task = _task("usercode_example:make_model", 4 * BASE, zero_readout=True)
    model = build_model(task, load_data(task.data), mup=True)
    assert torch.count_nonzero(model[-1].weight) == 0 and torch.count_nonzero(model[-1].bias) == 0


def test_a_user_embedding_model_is_parametrized_too() -> None:
    task = _task("usercode_example:make_char_model", 2 * BASE, data="text")
    model = build_model(task, load_data(task.data), mup=True)
    shapes = shapes_of(model).params
    assert shapes["embed.weight"].role == "input" and shapes["embed.weight"].n_inf == 1
    assert shapes["head.weight"].role == "readout" and shapes["head.weight"].base == (None, BASE)


def test_a_factory_without_width_is_refused_with_the_fix() -> None:
    task = _task("usercode_example:make_failing_model", 2 * BASE)
    with pytest.raises(SpecError, match="`width` argument") as info:
        build_model(task, load_data(task.data), mup=True)
    assert info.value.errors[0][0] == "model.entrypoint"


def make_fixed_model(width: int, n_outputs: int) -> nn.Module:
    """A factory that ignores its width: nothing for μP to scale."""
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, n_outputs))


def test_a_factory_that_ignores_width_is_refused_with_the_fix() -> None:
    task = _task("test_mup_user:make_fixed_model", 2 * BASE)
    with pytest.raises(SpecError, match="sized by width"):
        build_model(task, load_data(task.data), mup=True)


def test_a_user_model_trains_in_mup_and_lowers_its_loss() -> None:
    task = _task("usercode_example:make_model", 4 * BASE)
    result = run_trial(task, TrialConfig(family="adamw", hparams={"lr": 1e-2}, schedule="constant", mup=True))
    assert result.status == TrialStatus.COMPLETED, result.error
    assert result.curve[-1].val_loss < result.curve[0].val_loss
    assert result.info["mup"] is True and result.info["base_width"] == BASE


def make_mlp(width: int, n_in: int = 4, n_out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_out))


def test_mup_model_parametrizes_a_plain_factory_without_changing_its_random_draws() -> None:
    torch.manual_seed(0)
    plain, after_plain = make_mlp(64), torch.rand(1)
    torch.manual_seed(0)
    model, after_mup = mup_model(make_mlp, width=64, base_width=16), torch.rand(1)
    assert torch.equal(after_plain, after_mup), "the base and delta copies must not consume the caller's RNG"
    assert torch.equal(plain[0].weight, model[0].weight) and torch.equal(plain[2].weight, model[2].weight)
    assert torch.allclose(model[4].weight, 2 * plain[4].weight)  # the readout keeps its base-width init
    assert lr_scales(model, "adaptive")["2.weight"] == pytest.approx(1 / 4)
