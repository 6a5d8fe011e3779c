"""The PyTorch snippet of a best configuration: it runs, builds the right optimizer, and schedules the LR
exactly as optforge trained it."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from optforge.catalog import SCHEDULES, get_family
from optforge.engine.schedules import lr_factor
from optforge.spec import TrialConfig
from optforge.spec.snippet import pytorch_snippet


def run_snippet(code: str, model: torch.nn.Module) -> dict[str, Any]:
    namespace: dict[str, Any] = {"model": model}
    exec(compile(code, "<snippet>", "exec"), namespace)
    return namespace


def tiny_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3))


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("total_steps", [1, 10, 37, 200])
def test_the_snippet_schedules_the_lr_exactly_as_the_engine(schedule: str, total_steps: int) -> None:
    params = {"warmup_fraction": 0.3} if schedule != "one_cycle" else {}
    config = TrialConfig(family="lion", schedule=schedule, schedule_params=params)
    namespace = run_snippet(pytorch_snippet(config, total_steps=total_steps), tiny_model())
    factor = namespace["lr_factor"]
    for step in range(total_steps + 2):
        expected = lr_factor(schedule, config.schedule_params, step, total_steps)
        assert math.isclose(factor(step), expected, rel_tol=1e-9, abs_tol=1e-12), (schedule, step)


def test_the_snippet_builds_the_familys_class_with_the_tuned_values_and_no_decay_on_vectors() -> None:
    config = TrialConfig(family="adamw", hparams={"lr": 3e-3, "beta2": 0.95, "weight_decay": 0.1}, schedule="cosine")
    model = tiny_model()
    namespace = run_snippet(pytorch_snippet(config, total_steps=50, header="study 7"), model)
    optimizer = namespace["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim < 2 for p in plain["params"])
    assert optimizer.defaults["betas"] == (0.9, 0.95)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_the_snippet_trains() -> None:
    torch.manual_seed(0)
    config = TrialConfig(family="lion", hparams={"lr": 1e-3}, schedule="wsd")
    model = tiny_model()
    namespace = run_snippet(pytorch_snippet(config, total_steps=60), model)
    optimizer, scheduler = namespace["optimizer"], namespace["scheduler"]
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert type(optimizer).__name__ == get_family("lion").constructor.split(":")[1]


@pytest.mark.parametrize(
    "config", [TrialConfig(family="muon"), TrialConfig(family="adamw", mup=True)], ids=["muon", "mup"]
)
def test_configurations_that_need_optforges_routing_use_the_engine(config: TrialConfig) -> None:
    code = pytorch_snippet(config, total_steps=20)
    assert "from optforge.engine.optimizers import build_optimizer" in code
    if config.mup:
        return  # μP needs the model built with base shapes; the snippet is checked for its text only
    namespace = run_snippet(code, tiny_model())
    assert namespace["optimizer"].param_groups
    assert namespace["scheduler"].get_last_lr()
