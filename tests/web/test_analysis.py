"""What the study page's analysis computes: fANOVA importance, parallel coordinates, μTransfer ranks, and
the stream cursor. No browser and no Ray: trials are built as storage returns them."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from optforge.service.web.data import last_event_id
from optforge.service.web.importance import analysis_scopes
from optforge.service.web.transfer import transfer_points
from optforge.spec import StudyEvent, StudyEventKind, StudySpec, TrialConfig, TrialRecord, TrialStatus
from optforge.storage.database import Storage
from optforge.storage.repo import events as events_repo
from optforge.storage.repo import studies as studies_repo

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def trial(number: int, config: TrialConfig, value: float | None, **fields: Any) -> TrialRecord:
    base = {
        "id": number + 1, "study_id": 1, "key": f"t{number}", "number": number, "config": config,
        "status": TrialStatus.COMPLETED, "phase": "search", "value": value, "final": value,
        "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    return TrialRecord(**{**base, **fields})


def spec(families: list[str]) -> StudySpec:
    return StudySpec.model_validate({"search": {"families": families, "schedules": ["cosine"]}})


def adamw(rng: random.Random, lr: float) -> TrialConfig:
    return TrialConfig(
        family="adamw",
        hparams={"lr": lr, "beta1": rng.uniform(0.9, 0.99), "beta2": rng.uniform(0.95, 0.999),
                 "weight_decay": 10 ** rng.uniform(-2, 0)},
        schedule="cosine",
        schedule_params={"warmup_fraction": rng.uniform(0, 0.2)},
    )  # fmt: skip


def test_importance_finds_the_one_hyperparameter_the_result_depends_on() -> None:
    rng = random.Random(0)
    trials = []
    for i in range(30):
        lr = 10 ** rng.uniform(-4, -2)
        trials.append(trial(i, adamw(rng, lr), (math.log10(lr) + 3) ** 2 + 0.01 * rng.random()))
    (scope,) = analysis_scopes(spec(["adamw"]), trials)  # one family: its hyperparameters are the "all" scope
    ranked = [item.name for item in scope.importance]
    assert ranked[0] == "adamw.lr"
    assert scope.importance[0].importance > 0.5
    assert math.isclose(sum(item.importance for item in scope.importance), 1.0, rel_tol=1e-6)
    # The parallel-coordinates axes follow the importance, and each row holds the values the sampler saw.
    assert scope.dimensions[0].name == "adamw.lr" and scope.dimensions[0].log
    row = next(r for r in scope.rows if r.trial_id == trials[0].id)
    assert row.values[0] == pytest.approx(trials[0].config.hparams["lr"])
    assert row.objective == trials[0].value


def test_a_multi_family_study_has_an_all_scope_and_one_scope_per_family_best_first() -> None:
    rng = random.Random(1)
    trials = []
    for i in range(16):
        if i % 2:
            config = TrialConfig(family="sgd", hparams={"lr": 10 ** rng.uniform(-1.5, 0.5), "momentum": 0.9},
                                 schedule="cosine")  # fmt: skip
            trials.append(trial(i, config, 0.1 + 0.01 * rng.random()))
        else:
            trials.append(trial(i, adamw(rng, 1e-3), 1.0 + 0.01 * rng.random()))
    scopes = analysis_scopes(spec(["adamw", "sgd"]), trials)
    assert [s.key for s in scopes] == ["all", "family:sgd", "family:adamw"]  # sgd did better (lower loss)
    everything = scopes[0]
    assert everything.importance[0].name == "family"
    # Per-family names never mix: AdamW's LR and SGD's LR are different axes, each in its own scope.
    assert not any(d.name.endswith(".lr") for d in everything.dimensions)
    assert any(d.name == "sgd.lr" for d in scopes[1].dimensions)


def test_only_completed_search_trials_count() -> None:
    rng = random.Random(2)
    config = adamw(rng, 1e-3)
    trials = [trial(i, adamw(rng, 10 ** rng.uniform(-4, -2)), rng.random()) for i in range(4)]
    trials += [
        trial(4, config, 0.5, status=TrialStatus.PRUNED),
        trial(5, config, math.inf, status=TrialStatus.DIVERGED),
        trial(6, config, 0.2, phase="reseed", seed=1),
        trial(7, config, None, status=TrialStatus.RUNNING),
    ]
    (scope,) = analysis_scopes(spec(["adamw"]), trials)
    assert scope.n_trials == 4
    assert {r.trial_id for r in scope.rows} == {t.id for t in trials[:4]}


def test_too_few_trials_or_equal_results_give_a_note_instead_of_an_importance() -> None:
    rng = random.Random(3)
    (scope,) = analysis_scopes(spec(["adamw"]), [trial(0, adamw(rng, 1e-3), 0.5)])
    assert scope.importance == [] and "at least" in (scope.note or "")
    assert analysis_scopes(spec(["adamw"]), [])[0].rows == []
    (same,) = analysis_scopes(spec(["adamw"]), [trial(i, adamw(rng, 10 ** rng.uniform(-4, -2)), 0.5) for i in range(6)])
    assert same.importance == [] and "same result" in (same.note or "")
    assert len(same.rows) == 6  # the parallel coordinates still show them


def test_transfer_ranks_each_configuration_at_the_proxy_and_at_the_target() -> None:
    rng = random.Random(4)
    configs = [adamw(rng, lr) for lr in (1e-3, 2e-3, 4e-3)]
    trials = [trial(i, c, v, width=32) for i, (c, v) in enumerate(zip(configs, (0.1, 0.2, 0.3), strict=True))]
    # At the target width the first two swap; each configuration runs with two seeds, which are averaged.
    target = {0: (0.24, 0.26), 1: (0.14, 0.16), 2: (0.34, 0.36)}
    number = 3
    for index, values in target.items():
        for seed, value in enumerate(values):
            trials.append(trial(number, configs[index], value, phase="transfer", width=256, seed=seed))
            number += 1
    trials.append(trial(number, adamw(rng, 8e-3), 0.05, width=32))  # tuned at the proxy, never transferred
    points = transfer_points(trials, "min")
    assert [(p.proxy_rank, p.target_rank) for p in points] == [(2, 1), (1, 2), (3, 3)]
    assert points[0].target_value == pytest.approx(0.15)
    assert (points[0].proxy_width, points[0].target_width) == (32, 256)
    assert transfer_points(trials[:3], "min") == []  # no transfer phase, nothing to show


@pytest.mark.parametrize("n_events", [0, 1, 2, 3, 7, 8, 9, 130])
def test_last_event_id_is_the_newest_event(tmp_path: Path, n_events: int) -> None:
    with Storage.open(f"sqlite:///{tmp_path / 'events.db'}") as storage, storage.session() as session:
        study = studies_repo.create_study(session, spec=StudySpec())
        other = studies_repo.create_study(session, spec=StudySpec())
        events = [StudyEvent(kind=StudyEventKind.PHASE, data={"i": i}) for i in range(n_events)]
        events_repo.append_events(session, study_id=study.id, events=events)
        events_repo.append_events(session, study_id=other.id, events=[StudyEvent(kind=StudyEventKind.STARTED)] * 5)
        assert last_event_id(session, study.id) == n_events
