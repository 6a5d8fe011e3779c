"""Built-in workloads: output shapes, parameter roles, width/depth knobs, the μP hooks, and spec errors."""

from __future__ import annotations

import pytest
import torch

from optforge.engine.data import Dataset, load_data
from optforge.engine.routing import classify_parameters
from optforge.engine.workloads import MLP, WorkloadScales, build_builtin, build_model, default_heads
from optforge.spec import DataSpec, SpecError, TaskSpec, load_spec


def _task(model: dict, data: dict) -> TaskSpec:
    return TaskSpec(model=model, data=data)


def _roles(model: torch.nn.Module) -> dict[str, str]:
    return classify_parameters(model)


def test_mlp_maps_a_batch_to_class_scores_and_marks_its_roles(digits: Dataset) -> None:
    model = build_model(_task({"name": "mlp", "width": 24, "depth": 3}, {"name": "digits"}), digits)
    assert model(digits.x_train[:5]).shape == (5, 10)
    roles = _roles(model)
    assert roles["input.weight"] == "input" and roles["readout.weight"] == "readout"
    assert [n for n, r in roles.items() if r == "hidden"] == ["hidden.0.weight", "hidden.1.weight"]  # depth - 1
    assert all(r == "vector" for n, r in roles.items() if n.endswith("bias"))


def test_cnn_reads_images_and_marks_stem_and_head(digits: Dataset) -> None:
    model = build_model(_task({"name": "cnn", "width": 8, "depth": 2}, {"name": "digits"}), digits)
    assert model(digits.x_train[:3]).shape == (3, 10)
    roles = _roles(model)
    assert roles["stem.weight"] == "input" and roles["readout.weight"] == "readout"
    assert sum(r == "hidden" for r in roles.values()) == 4  # two convolutions per residual block


def test_cnn_adds_the_channel_to_single_channel_images() -> None:
    data = Dataset(
        name="gray",
        kind="classification",
        x_train=torch.randn(6, 5, 5),
        y_train=torch.arange(6) % 2,
        x_val=torch.randn(2, 5, 5),
        y_val=torch.tensor([0, 1]),
        n_outputs=2,
    )
    model = build_model(_task({"name": "cnn", "width": 4, "depth": 1}, {"name": "digits"}), data)
    assert model(data.x_train).shape == (6, 2)


def test_transformer_gives_next_token_logits_and_is_causal(text: Dataset) -> None:
    model = build_model(_task({"name": "transformer", "width": 32, "depth": 2}, {"name": "text"}), text)
    tokens = text.x_train[:2]
    logits = model(tokens)
    assert logits.shape == (2, 16, text.n_outputs)
    changed = tokens.clone()
    changed[:, 10] = (changed[:, 10] + 1) % text.n_outputs
    again = model(changed)
    assert torch.allclose(logits[:, :10], again[:, :10], atol=1e-5), "a future token changed an earlier output"
    assert not torch.allclose(logits[:, 10:], again[:, 10:])
    roles = _roles(model)
    assert roles["token.weight"] == roles["position.weight"] == "input"
    assert roles["readout.weight"] == "readout"
    assert roles["blocks.0.qkv.weight"] == "hidden"


def test_default_heads_divide_the_width() -> None:
    for width in (32, 64, 128, 192, 200, 512):
        heads = default_heads(width)
        assert width % heads == 0 and heads <= max(1, width // 64)
    assert default_heads(256) == 4


def test_width_and_depth_grow_the_model(digits: Dataset) -> None:
    def count(width: int, depth: int) -> int:
        model = build_model(_task({"name": "mlp", "width": width, "depth": depth}, {"name": "digits"}), digits)
        return sum(p.numel() for p in model.parameters())

    assert count(16, 2) < count(32, 2) < count(32, 3)


def test_output_multiplier_and_zero_readout_hooks_for_mup(digits: Dataset) -> None:
    spec = _task({"name": "mlp", "width": 16}, {"name": "digits"}).model
    torch.manual_seed(0)
    plain = build_builtin(spec, digits, WorkloadScales())
    torch.manual_seed(0)
    halved = build_builtin(spec, digits, WorkloadScales(output_mult=0.5))
    x = digits.x_train[:4]
    # The multiplier scales the readout's input (mup.MuReadout's form), so the bias is not scaled.
    assert torch.allclose(halved(x) - halved.readout.bias, 0.5 * (plain(x) - plain.readout.bias), atol=1e-6)
    zeroed = build_builtin(spec, digits, WorkloadScales(zero_readout=True))
    assert isinstance(zeroed, MLP) and torch.count_nonzero(zeroed.readout.weight) == 0


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"name": "mlp", "kwargs": {"dropout": 0.1}}, "model.kwargs.dropout"),
        ({"name": "mlp", "kwargs": {"activation": "swish"}}, "model.kwargs.activation"),
        ({"name": "transformer", "width": 30, "kwargs": {"heads": 4}}, "model.kwargs.heads"),
    ],
)
def test_bad_model_kwargs_name_the_field(model: dict, field: str, digits: Dataset, text: Dataset) -> None:
    data_name = "text" if model["name"] == "transformer" else "digits"
    with pytest.raises(SpecError) as info:
        build_model(_task(model, {"name": data_name}), text if data_name == "text" else digits)
    assert info.value.errors[0][0] == field


def test_a_cnn_on_vectors_is_refused_with_the_reason() -> None:
    vectors = load_data(DataSpec(name="iris"))
    task = _task({"name": "cnn"}, {"name": "arrays", "path": "iris.npz"})
    with pytest.raises(SpecError, match="needs images"):
        build_model(task, vectors)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"stpes": 10}, "stpes"),
        ({"model": {"name": "transformer"}, "data": {"name": "digits"}}, "transformer"),
        ({"model": {"name": "mlp"}, "data": {"name": "text"}}, "text"),
        ({"model": {"name": "cnn"}, "data": {"name": "wine"}}, "cnn"),
        ({"model": {"name": "mlp", "width": 0}}, "model.width"),
        ({"data": {"name": "arrays"}}, "data.path"),
    ],
)
def test_task_spec_errors_name_the_field_or_the_bad_combination(fields: dict, named: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(TaskSpec, fields)
    assert named in str(info.value)
