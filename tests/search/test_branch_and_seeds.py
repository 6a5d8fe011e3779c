"""A study with schedule-aware ASHA and multi-seed selection of the top configuration, on local Ray."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from optforge.search import StudyResult, run_study
from optforge.spec import StudyEvent, StudyEventKind, StudySpec, TrialStatus

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture(scope="module")
def branched_study() -> tuple[StudyResult, list[StudyEvent]]:
    spec = StudySpec.model_validate(
        {
            "name": "branch-and-seeds",
            "task": {"model": {"name": "mlp", "width": 16}, "data": {"name": "digits"}, "steps": 60, "eval_every": 15},
            "search": {
                "n_trials": 4,
                "families": ["adamw", "muon"],
                "schedules": ["wsd"],
                "early_stopping": "wsd_branch",
                "top_k": 1,
                "extra_seeds": 2,
                "seed": 3,
            },
        }
    )
    events: list[StudyEvent] = []
    return run_study(spec, reporter=events.append), events


def test_wsd_branch_rungs_judge_the_branched_loss_not_the_raw_one(branched_study: tuple) -> None:
    result, events = branched_study
    rungs = next(e for e in events if e.kind == StudyEventKind.STARTED).data["rungs"]
    assert rungs == [15, 45]
    completed = [t for t in result.trials if t.status == TrialStatus.COMPLETED]
    assert completed
    for trial in completed:
        branched = trial.result.info["branched_val_loss"]
        assert set(branched) == {"15", "45"}
        told = {
            e.data["point"]["step"]: e.data
            for e in events
            if e.kind == StudyEventKind.TRIAL_RESULT and e.trial_id == trial.trial_id
        }
        for rung in rungs:
            assert told[rung]["objective"] == pytest.approx(branched[str(rung)])
            assert told[rung]["objective"] != pytest.approx(told[rung]["point"]["val_loss"])


def test_the_top_configuration_is_rerun_with_extra_seeds_and_ranked_by_its_mean(branched_study: tuple) -> None:
    result, events = branched_study
    (group,) = result.seed_groups
    assert group.source_trial_id == result.trials[0].trial_id
    assert len(group.seeds) == len(set(group.seeds)) == 3  # the search run and 2 extra seeds
    assert all(v is not None for v in group.values)
    assert group.mean == pytest.approx(sum(group.values) / 3) and group.std is not None and group.std > 0
    assert result.best_config == group.config and result.best_value == group.mean and result.best_std == group.std
    assert {t.phase for t in result.reseeds} == {"reseed"} and len(result.reseeds) == 2
    assert any(e.kind == StudyEventKind.PHASE and e.data["phase"] == "reseed" for e in events)
