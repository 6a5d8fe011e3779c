"""μP for the built-in workloads: init, readout, attention scale, and the per-rule LR multipliers."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from optforge.engine import build_model, build_optimizer
from optforge.engine.data import Dataset
from optforge.engine.mup import MupError, lr_scales, shapes_of
from optforge.engine.routing import classify_parameters
from optforge.spec import TaskSpec, TrialConfig

BASE = 16  # tiny models: the rules only depend on the width ratio


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _task(name: str, width: int, *, zero_readout: bool = False, **kwargs: object) -> TaskSpec:
    data = "text" if name == "transformer" else "digits"
    model = {
        "name": name,
        "width": width,
        "depth": 2,
        "base_width": BASE,
        "zero_readout": zero_readout,
        "kwargs": kwargs,
    }
    return TaskSpec.model_validate({"model": model, "data": {"name": data}})


def _build(task: TaskSpec, data: Dataset, *, mup: bool, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(task, data, mup=mup)


def _data(name: str, digits: Dataset, text: Dataset) -> Dataset:
    return text if name == "transformer" else digits


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_mup_at_the_base_width_is_sp(name: str, digits: Dataset, text: Dataset) -> None:
    data = _data(name, digits, text)
    task = _task(name, BASE)
    sp, mup = _build(task, data, mup=False), _build(task, data, mup=True)
    mup_params = dict(mup.named_parameters())
    for n, p in sp.named_parameters():
        assert torch.equal(p, mup_params[n]), f"{n} differs from SP at the base width"
    x = data.x_train[:3]
    assert torch.equal(sp(x), mup(x))


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_the_zero_readout_option_starts_the_readout_at_zero_and_changes_nothing_else(
    name: str, digits: Dataset, text: Dataset
) -> None:
    data = _data(name, digits, text)
    sp = _build(_task(name, BASE), data, mup=False)
    zeroed = _build(_task(name, BASE, zero_readout=True), data, mup=True)
    zeroed_params = dict(zeroed.named_parameters())
    readout = {n for n, role in classify_parameters(sp).items() if role == "readout"} | {"readout.bias"}
    for n, p in sp.named_parameters():
        if n in readout:
            assert torch.count_nonzero(zeroed_params[n]) == 0, n
        else:
            assert torch.equal(p, zeroed_params[n]), n
    assert torch.count_nonzero(zeroed(data.x_train[:3])) == 0


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_a_wide_readout_keeps_the_base_width_init_and_gets_a_base_over_width_multiplier(
    name: str, digits: Dataset, text: Dataset
) -> None:
    data = _data(name, digits, text)
    task = _task(name, 4 * BASE)
    sp, mup = _build(task, data, mup=False), _build(task, data, mup=True)
    assert mup.output_mult == pytest.approx(1 / 4)
    # torch's readout init has std ~ 1/sqrt(fan_in); μP keeps the base width's: x sqrt(4).
    assert torch.allclose(mup.readout.weight, 2 * sp.readout.weight)


def test_hidden_biases_keep_their_base_width_size(digits: Dataset) -> None:
    task = _task("mlp", 4 * BASE)
    sp, mup = _build(task, digits, mup=False), _build(task, digits, mup=True)
    # torch draws biases with std 1/sqrt(fan_in); μP multiplies by sqrt(fan-in multiplier) = 2 here.
    assert torch.allclose(mup.hidden[0].bias, 2 * sp.hidden[0].bias)
    assert torch.equal(mup.input.bias, sp.input.bias), "the input layer's fan-in (the data) does not scale"


def test_attention_is_one_over_head_dim_relative_to_the_base_head(text: Dataset) -> None:
    wide = _build(_task("transformer", 4 * BASE, heads=2), text, mup=True)
    head_dim, base_head_dim = 4 * BASE // 2, BASE // 2
    assert wide.blocks[0].attn_scale == pytest.approx(math.sqrt(base_head_dim) / head_dim)
    at_base = _build(_task("transformer", BASE, heads=2), text, mup=True)
    assert at_base.blocks[0].attn_scale is None, "at the base head size μP keeps SP's 1/sqrt(d)"


def _expected(rule: str, name: str, r: float) -> float:
    """The table of docs/mup.md for the MLP (input, hidden matrices, readout, their biases)."""
    if name == "readout.bias":
        return 1.0  # finite: the number of classes
    if name.startswith("hidden") and name.endswith("weight"):
        return {"adaptive": 1 / r, "learned": 1 / r, "sgd": 1.0, "spectral": 1.0}[rule]
    return r if rule == "sgd" else 1.0  # vector-like: input weights, readout weights, hidden biases


@pytest.mark.parametrize("rule", ["adaptive", "sgd", "spectral", "learned"])
def test_lr_multipliers_follow_the_rule_of_the_family(rule: str, digits: Dataset) -> None:
    r = 8.0
    model = _build(_task("mlp", int(r * BASE)), digits, mup=True)
    scales = lr_scales(model, rule)  # type: ignore[arg-type]
    assert set(scales) == {n for n, _ in model.named_parameters()}
    for name, value in scales.items():
        assert value == pytest.approx(_expected(rule, name, r)), name


def test_every_multiplier_is_one_at_the_base_width(digits: Dataset, text: Dataset) -> None:
    for name in ("mlp", "cnn", "transformer"):
        model = _build(_task(name, BASE), _data(name, digits, text), mup=True)
        for rule in ("adaptive", "sgd", "spectral"):
            assert set(lr_scales(model, rule).values()) == {1.0}, (name, rule)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rule", "mup_optimizer"), [("adaptive", "MuAdamW"), ("sgd", "MuSGD")])
def test_multipliers_match_the_mup_package(rule: str, mup_optimizer: str, digits: Dataset, text: Dataset) -> None:
    mup = pytest.importorskip("mup")
    for name in ("mlp", "transformer"):
        data = _data(name, digits, text)
        ours = _build(_task(name, 8 * BASE), data, mup=True)
        theirs = _build(_task(name, 8 * BASE), data, mup=False)
        base, delta = _build(_task(name, BASE), data, mup=False), _build(_task(name, 2 * BASE), data, mup=False)
        mup.set_base_shapes(theirs, base, delta=delta, rescale_params=False, do_assert=False)
        optimizer = getattr(mup, mup_optimizer)(theirs.parameters(), lr=1.0)
        names = {id(p): n for n, p in theirs.named_parameters()}
        expected = {names[id(p)]: g["lr"] for g in optimizer.param_groups for p in g["params"]}
        assert lr_scales(ours, rule) == pytest.approx(expected), name  # type: ignore[arg-type]


def test_the_optimizer_gets_mup_lrs_and_keeps_the_decay_per_step(digits: Dataset) -> None:
    r = 4
    model = _build(_task("mlp", r * BASE), digits, mup=True)
    config = TrialConfig(family="adamw", hparams={"lr": 1e-3, "weight_decay": 0.1}, mup=True)
    groups = {g["role"]: g for g in build_optimizer(model, config).param_groups}
    assert groups["hidden"]["lr"] == pytest.approx(1e-3 / r)
    assert groups["input"]["lr"] == pytest.approx(1e-3)
    for role in ("input", "hidden", "readout"):
        assert groups[role]["lr"] * groups[role]["weight_decay"] == pytest.approx(1e-3 * 0.1), role
    assert groups["vector"]["weight_decay"] == 0.0


def test_muon_keeps_its_own_shape_scaling_under_the_spectral_rule(digits: Dataset) -> None:
    model = _build(_task("mlp", 4 * BASE), digits, mup=True)
    config = TrialConfig(family="muon", hparams={"lr": 0.02, "adamw_lr": 3e-3}, mup=True)
    for group in build_optimizer(model, config).param_groups:
        base = 0.02 if group["spectral"] else 3e-3
        assert group["lr"] == pytest.approx(base), group["role"]


def test_a_mup_config_on_a_model_built_without_mup_says_how_to_fix_it(digits: Dataset) -> None:
    model = _build(_task("mlp", 2 * BASE), digits, mup=False)
    with pytest.raises(MupError, match=r"build_model\(task, data, mup=True\)"):
        build_optimizer(model, TrialConfig(family="adamw", mup=True))


def test_mup_shapes_survive_deepcopy_and_torch_save(digits: Dataset) -> None:
    model = _build(_task("mlp", 2 * BASE), digits, mup=True)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for copied in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        assert lr_scales(copied, "adaptive") == lr_scales(model, "adaptive")
    assert shapes_of(model).width_ratio == 2


def test_a_base_width_the_heads_do_not_divide_names_the_field(text: Dataset) -> None:
    task = TaskSpec.model_validate(
        {
            "model": {"name": "transformer", "width": 32, "base_width": 12, "kwargs": {"heads": 8}},
            "data": {"name": "text"},
        }
    )
    from optforge.spec import SpecError

    with pytest.raises(SpecError) as info:
        build_model(task, text, mup=True)
    assert info.value.errors[0][0] == "model.base_width"
