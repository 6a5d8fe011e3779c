"""μTransfer on the session's local Ray: tune at a proxy width, confirm the top-k at the target width.

Tiny on purpose (an MLP on digits, 40 steps, 3 proxy trials, top-2 at two seeds): the time goes into
the three Tune runs (proxy search, target search, target re-seeds), each starting its own worker.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from optforge.search.transfer import TransferResult, proxy_width, run_transfer, target_study
from optforge.spec import SpecError, StudyEvent, StudyEventKind, StudySpec, TrialConfig

pytestmark = pytest.mark.slow

TASK = {
    "model": {"name": "mlp", "width": 64, "base_width": 16},
    "data": {"name": "digits"},
    "steps": 40,
    "eval_every": 20,
}


def spec(proxy: dict, task: dict | None = None, **search: object) -> StudySpec:
    return StudySpec.model_validate(
        {
            "name": "transfer",
            "task": task or TASK,
            "search": {
                "n_trials": 3,
                # One worker per phase: each Tune run starts its workers afresh (torch imports included), and
                # on 2 cores two workers starting at once only slow each other down.
                "max_concurrent": 1,
                "families": ["adamw"],
                "schedules": ["cosine"],
                "early_stopping": "none",
                "warm_start": False,
                "proxy": proxy,
                **search,
            },
        }
    )


@pytest.fixture(scope="module")
def transfer(ray_session: None) -> tuple[TransferResult, list[StudyEvent]]:
    events: list[StudyEvent] = []
    result = run_transfer(spec({"width": 16, "top_k": 2, "seeds": 2}), reporter=events.append)
    return result, events


def test_the_proxy_is_tuned_at_its_width_in_mup(transfer: tuple[TransferResult, list[StudyEvent]]) -> None:
    result, _ = transfer
    assert (result.proxy_width, result.target_width, result.base_width) == (16, 64, 16)
    assert len(result.proxy.trials) == 3
    assert all(t.config.mup for t in result.proxy.trials)
    assert result.target is not None
    proxy_params = {t.result.info["n_params"] for t in result.proxy.trials}
    target_params = {t.result.info["n_params"] for t in [*result.target.trials, *result.target.reseeds]}
    assert len(proxy_params) == len(target_params) == 1 and max(proxy_params) < min(target_params)


def test_the_top_k_are_rerun_at_the_target_with_seeds_and_the_best_wins(
    transfer: tuple[TransferResult, list[StudyEvent]],
) -> None:
    result, _ = transfer
    assert len(result.candidates) == 2
    proxy_best = [t.config for t in result.proxy.trials[:2]]
    for candidate in result.candidates:
        assert any(candidate.config == c for c in proxy_best)
        assert len(candidate.target_values) == 2 and all(v is not None for v in candidate.target_values)
    assert [c.target_rank for c in result.candidates] == [0, 1]
    assert result.best_config == result.candidates[0].config
    assert result.best_value == min(c.target_mean for c in result.candidates if c.target_mean is not None)
    for agreement in (result.spearman, result.kendall):  # two candidates: they agree or they do not
        assert agreement is not None and abs(agreement) == pytest.approx(1.0)
    stored = result.best_configs()
    assert stored and all((b.proxy_width, b.target_width, b.n) == (16, 64, 2) for b in stored)
    assert all(sorted(b.seeds) == [0, 1] for b in stored)


def test_events_tell_the_phases_and_widths_apart(transfer: tuple[TransferResult, list[StudyEvent]]) -> None:
    result, events = transfer
    kinds = [e.kind for e in events]
    assert kinds.count(StudyEventKind.STARTED) == 1 and kinds.count(StudyEventKind.FINISHED) == 1
    assert kinds[-1] == StudyEventKind.FINISHED
    switch = next(i for i, e in enumerate(events) if e.kind == StudyEventKind.PHASE and e.data["phase"] == "target")
    assert events[switch].data["width"] == 64
    trial_events = [e for e in events if e.trial_id is not None and e.kind != StudyEventKind.BEST_CHANGED]
    before = [e for e in trial_events if events.index(e) < switch]
    after = [e for e in trial_events if events.index(e) > switch]
    assert before and after
    assert all(e.data["width"] == 16 and e.data["phase"] != "target" for e in before)
    assert all(e.data["width"] == 64 and e.data["phase"] == "target" for e in after)
    assert {e.trial_id for e in after} == {i for c in result.candidates for i in c.target_trial_ids}
    finished = events[-1].data
    assert (finished["proxy_width"], finished["target_width"]) == (16, 64)
    assert finished["best_value"] == result.best_value


def test_a_width_ratio_sets_the_proxy_width() -> None:
    assert proxy_width(spec({"width_ratio": 0.25})) == 16


def test_a_proxy_as_wide_as_the_target_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError) as info:
        proxy_width(spec({"width": 64}))
    assert info.value.errors[0][0] == "search.proxy.width"


def test_the_target_study_runs_exactly_the_candidates_in_mup_without_pruning() -> None:
    configs = [TrialConfig(family="adamw", hparams={"lr": lr}, mup=True) for lr in (1e-3, 3e-3)]
    target = target_study(spec({"width": 16}), configs, seeds=3)
    assert target.task.model.width == 64 and target.search.proxy is None and target.search.mup
    assert target.search.initial_configs == configs and target.search.n_trials == 2
    assert (target.search.early_stopping, target.search.top_k, target.search.extra_seeds) == ("none", 2, 2)
