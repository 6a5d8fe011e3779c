"""Schedule-aware ASHA's branch: a cooldown judged on a copy, leaving the real run untouched. No Ray."""

from __future__ import annotations

import pytest

from optforge.engine.data import load_data
from optforge.engine.trainer import run_trial
from optforge.search.branching import run_branched_trial
from optforge.spec import MetricPoint, TaskSpec, TrialConfig, TrialStatus

TASK = TaskSpec.model_validate(
    {"model": {"name": "mlp", "width": 32}, "data": {"name": "digits"}, "steps": 40, "eval_every": 10}
)


@pytest.mark.parametrize("family", ["adamw", "muon", "sgd"])
def test_branching_leaves_the_real_curve_bit_identical(family: str) -> None:
    config = TrialConfig(family=family, schedule="wsd")
    data = load_data(TASK.data)
    plain = run_trial(TASK, config, dataset=data)
    seen: list[tuple[int, MetricPoint, MetricPoint | None]] = []
    branched = run_branched_trial(
        TASK, config, lambda s, p, j: seen.append((s, p, j)), dataset=data, branch_steps=(10, 30), branch_fraction=0.2
    )
    assert plain.status == branched.status == TrialStatus.COMPLETED
    assert [p.val_loss for p in branched.curve] == [p.val_loss for p in plain.curve]
    assert [p.train_loss for p in branched.curve] == [p.train_loss for p in plain.curve]
    judged_at = {s for s, _, j in seen if j is not None}
    assert judged_at == {10, 30}
    assert set(branched.info["branched_val_loss"]) == {"10", "30"}


def test_a_branched_cooldown_lowers_the_loss_of_a_high_lr_constant_run() -> None:
    """At a constant, high LR the model sits above its basin; a short cooldown settles it (the point of WSD)."""
    config = TrialConfig(family="adamw", hparams={"lr": 3e-2}, schedule="constant")
    seen: list[tuple[int, MetricPoint, MetricPoint | None]] = []
    run_branched_trial(
        TASK,
        config,
        lambda s, p, j: seen.append((s, p, j)),
        dataset=load_data(TASK.data),
        branch_steps=(10, 30),
        branch_fraction=0.5,
    )
    pairs = [(p.val_loss, j.val_loss) for _, p, j in seen if j is not None]
    assert len(pairs) == 2
    assert all(judged < raw for raw, judged in pairs), pairs
