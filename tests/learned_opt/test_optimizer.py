"""MuLO as a torch optimizer: its vectorized step, μP scaling, checkpoints and its shipped weights."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from optforge.engine import build_model, build_optimizer, load_data
from optforge.learned_opt import LearnedWeights, MuLO, StandardLO, UpdateNetwork, param_groups, shipped_weights
from optforge.learned_opt.scaling import infer_roles, update_multiplier
from optforge.spec import TaskSpec, TrialConfig

from .reference import reference_update


class Scaled(nn.Module):
    """A conv, linears and a bare scalar: 4-D, 2-D, 1-D and 0-D parameters in one model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 4 * 4, 12)
        self.hidden = nn.Linear(12, 12)
        self.out = nn.Linear(12, 2)
        self.temperature = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.fc(torch.tanh(self.conv(x)).flatten(1)))
        return self.out(torch.tanh(self.hidden(h))) * self.temperature


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 6, 6, generator=g), torch.randint(0, 2, (16,), generator=g)


def _loss(model: nn.Module) -> torch.Tensor:
    x, y = _data()
    return nn.functional.cross_entropy(model(x), y)


def _step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    _loss(model).backward()
    optimizer.step()


def _random_weights(parametrization: str = "mup") -> LearnedWeights:
    torch.manual_seed(3)
    return LearnedWeights.from_network(UpdateNetwork(), parametrization, base_width=8)  # type: ignore[arg-type]


def test_the_vectorized_step_equals_a_per_tensor_reference_computation() -> None:
    torch.manual_seed(0)
    model = Scaled()
    weights = _random_weights()
    optimizer = MuLO(model.parameters(), step_mult=0.7, weights=weights)
    roles = dict(zip(map(id, model.parameters()), infer_roles(model.parameters()), strict=True))
    history: dict[str, list[torch.Tensor]] = {n: [] for n, _ in model.named_parameters()}
    for step in range(3):
        optimizer.zero_grad()
        _loss(model).backward()
        expected = {}
        for name, p in model.named_parameters():
            history[name].append(p.grad.clone())
            mu = 8 / p.shape[1] if roles[id(p)] == "hidden" else 1.0
            scale = 1.0 * 0.01 * 0.7 * mu  # lr · μLO's base step · step_mult · μ(p)
            expected[name] = reference_update(
                p.detach(), history[name], weights.build_network(), step=step, scale=scale, exp_mult=0.001
            )
        optimizer.step()
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), expected[name], rtol=1e-4, atol=1e-6, msg=f"{name} at step {step}")


def test_state_dict_round_trip_gives_identical_next_steps() -> None:
    torch.manual_seed(0)
    model = Scaled()
    optimizer = MuLO(model.parameters(), weights=_random_weights())
    for _ in range(3):
        _step(model, optimizer)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # plain tensors, numbers and strings only

    resumed_model, fresh_model = copy.deepcopy(model), copy.deepcopy(model)
    resumed = MuLO(resumed_model.parameters(), weights="random")  # the checkpoint brings its own network
    resumed.load_state_dict(saved)
    fresh = MuLO(fresh_model.parameters(), weights=_random_weights())
    for _ in range(3):
        for m, opt in ((model, optimizer), (resumed_model, resumed), (fresh_model, fresh)):
            _step(m, opt)
    for (name, a), b in zip(model.named_parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resuming"
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), fresh_model.parameters(), strict=True))


def test_stepping_never_writes_into_a_loaded_state_dict() -> None:
    torch.manual_seed(0)
    model = Scaled()
    optimizer = MuLO(model.parameters(), weights=_random_weights())
    _step(model, optimizer)
    saved = copy.deepcopy(optimizer.state_dict())
    snapshot = copy.deepcopy(saved)
    reloaded = MuLO(model.parameters(), weights=_random_weights())
    reloaded.load_state_dict(saved)
    _step(model, reloaded)
    for key, state in saved["state"].items():
        for name, value in state.items():
            assert torch.equal(value, snapshot["state"][key][name]), f"state {key}.{name} was modified"


def _hidden_update(width: int, cls: type[MuLO], parametrization: str) -> float:
    """RMS of one update of a ``width x width`` hidden weight, with a network whose d is exactly 0.1 x a
    unit-RMS feature (no random part), so only μ(p) can make it depend on width."""
    torch.manual_seed(0)
    net = UpdateNetwork().init_adam_like(gain=0.1, residual=0.0)
    weights = LearnedWeights.from_network(net, parametrization, base_width=32)  # type: ignore[arg-type]
    hidden = nn.Parameter(torch.randn(width, width) / width**0.5)
    optimizer = cls([{"params": [hidden], "role": "hidden"}], weights=weights)
    hidden.grad = torch.randn(width, width)
    before = hidden.detach().clone()
    optimizer.step()
    return float((hidden.detach() - before).square().mean().sqrt())


def test_mup_shrinks_hidden_updates_with_fan_in_and_sp_does_not() -> None:
    narrow, wide = _hidden_update(32, MuLO, "mup"), _hidden_update(128, MuLO, "mup")
    assert wide == pytest.approx(narrow * 32 / 128, rel=1e-3)
    assert narrow == pytest.approx(0.01 * 0.1, rel=1e-3)  # at the base width μ(p) = 1: base step x gain
    sp_narrow, sp_wide = _hidden_update(32, StandardLO, "sp"), _hidden_update(128, StandardLO, "sp")
    assert sp_wide == pytest.approx(sp_narrow, rel=1e-3)
    # A convolution's kernel is not width: its μ(p) follows its input channels, as the engine's μP rule does.
    conv = torch.zeros(64, 32, 3, 3)
    assert update_multiplier(conv, "hidden", mup=True, base_width=16) == 0.5
    assert update_multiplier(conv, "input", mup=True, base_width=16) == 1.0


def test_engine_mup_groups_and_plain_parameters_give_the_same_steps() -> None:
    """build_optimizer puts μ(p) in the group LR (mup_rule 'learned'); MuLO must not apply it twice."""
    task = TaskSpec.model_validate(
        {"model": {"width": 64, "depth": 3, "base_width": 32}, "data": {"name": "iris"}, "steps": 5}
    )
    data = load_data(task.data)
    torch.manual_seed(0)
    model = build_model(task, data, mup=True)
    twins = [copy.deepcopy(model) for _ in range(3)]
    optimizers = [
        build_optimizer(twins[0], TrialConfig(family="mulo", schedule="constant", mup=True), total_steps=5),
        MuLO(param_groups(twins[1]), base_width=32),
        MuLO(twins[2].parameters(), base_width=32),
    ]
    hidden = [g for g in optimizers[0].param_groups if g["role"] == "hidden"]
    assert hidden and all(g["lr"] == pytest.approx(0.5) for g in hidden), "μP's learned rule: base/width = 32/64"
    for m, opt in zip(twins, optimizers, strict=True):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(m(data.x_train), data.y_train).backward()
            opt.step()
    for other in twins[1:]:
        for (name, a), b in zip(twins[0].named_parameters(), other.parameters(), strict=True):
            torch.testing.assert_close(a, b, msg=name)


def test_untagged_parameters_are_routed_like_an_unmarked_model() -> None:
    model = Scaled()
    assert infer_roles(model.parameters()) == [
        "vector",  # the 0-d temperature (a module's own parameters come first)
        "input",  # conv weight: the first weight reads the data
        "vector",
        "hidden",
        "vector",
        "hidden",
        "vector",
        "readout",  # the last weight writes the output
        "vector",
    ]
    roles = {g["role"] for g in MuLO(model.parameters(), weights="random").param_groups}
    assert roles == {"input", "hidden", "readout", "vector"}


def _tiny_mup_task() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    task = TaskSpec.model_validate(
        {
            "model": {"width": 32, "depth": 2},
            "data": {"name": "teacher_student_classification", "n_samples": 256, "n_features": 8, "n_classes": 3},
        }
    )
    data = load_data(task.data)
    torch.manual_seed(0)
    return build_model(task, data, mup=True), data.x_train, data.y_train


def _loss_after_50_steps(weights: str | None, seed: int = 0) -> tuple[float, float]:
    model, x, y = _tiny_mup_task()
    torch.manual_seed(seed)
    optimizer = MuLO(model.parameters(), weights=weights)
    with torch.no_grad():
        initial = float(nn.functional.cross_entropy(model(x), y))
    for _ in range(50):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        return initial, float(nn.functional.cross_entropy(model(x), y))


def test_shipped_weights_train_a_tiny_mup_mlp_better_than_an_untrained_network() -> None:
    assert shipped_weights("mup").parametrization == "mup" and shipped_weights("sp").parametrization == "sp"
    initial, shipped = _loss_after_50_steps(None)
    assert shipped < 0.5 * initial, f"shipped weights: {initial:.3f} -> {shipped:.3f} in 50 steps"
    random = [_loss_after_50_steps("random", seed)[1] for seed in range(3)]
    assert shipped < min(random), f"shipped {shipped:.3f} vs random-init networks {random}"


def test_weights_of_the_other_parametrization_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="use StandardLO"):
        MuLO(Scaled().parameters(), weights=shipped_weights("sp"))
    with pytest.raises(ValueError, match="step_mult"):
        MuLO(Scaled().parameters(), step_mult=0.0)
    with pytest.raises(FileNotFoundError, match="weights="):
        MuLO(Scaled().parameters(), weights="/nonexistent/mulo.pt")
