"""The search space: conditional names, user restrictions, scales, and the params <-> config mapping.

No Ray here: Optuna's ask interface drives the define-by-run function directly.
"""

from __future__ import annotations

import math

import optuna
import pytest

from optforge.catalog import FAMILIES, get_family
from optforge.search.space import DEFAULT_SEARCH_SCHEDULES, SearchSpace
from optforge.spec import SearchSpec, SpecError, TrialConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample_many(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[TrialConfig, dict]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        config = space.sample(trial)
        out.append((config, dict(trial.params)))
        study.tell(trial, 0.0)
    return out


def test_every_dimension_is_named_after_the_family_or_schedule_that_owns_it() -> None:
    space = SearchSpace.from_spec(SearchSpec())
    for config, params in sample_many(space, 40):
        for name in params:
            if name in ("family", "schedule"):
                continue
            owner = name.split(".")[0]
            assert owner in (config.family, config.schedule), (name, config.family, config.schedule)


def test_families_and_schedules_are_restricted_to_the_ones_the_user_names() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw", "sgd"], schedules=["wsd", "linear"]))
    seen = sample_many(space, 30)
    assert {c.family for c, _ in seen} == {"adamw", "sgd"}
    assert {c.schedule for c, _ in seen} == {"wsd", "linear"}


def test_default_space_searches_the_catalog_defaults() -> None:
    space = SearchSpace.from_spec(SearchSpec())
    assert space.schedules == DEFAULT_SEARCH_SCHEDULES
    assert {c.family for c, _ in sample_many(space, 60)} == set(space.families)


def test_a_single_family_is_not_a_dimension() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw"], schedules=["cosine"]))
    for config, params in sample_many(space, 5):
        assert "family" not in params and "schedule" not in params
        assert config.family == "adamw" and config.schedule == "cosine"


def test_unsearched_hyperparameters_stay_at_their_default() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw"]))
    for config, params in sample_many(space, 10):
        assert "adamw.eps" not in params
        assert config.resolved_hparams()["eps"] == get_family("adamw").hparam("eps").default


def test_fixed_generic_key_applies_to_every_family_that_has_it() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw", "sgd", "lion"], fixed={"lr": 3e-3}))
    for config, params in sample_many(space, 20):
        assert config.hparams["lr"] == 3e-3
        assert not any(name.endswith(".lr") for name in params)


def test_fixed_family_key_wins_over_the_generic_key() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw", "sgd"], fixed={"lr": 3e-3, "sgd.lr": 0.5}))
    for config, _ in sample_many(space, 20):
        assert config.hparams["lr"] == (0.5 if config.family == "sgd" else 3e-3)


def test_fixed_schedule_parameter_applies_to_that_schedule_only() -> None:
    space = SearchSpace.from_spec(
        SearchSpec(families=["adamw"], schedules=["cosine", "wsd"], fixed={"cosine.warmup_fraction": 0.1})
    )
    seen = sample_many(space, 30)
    cosine = [c for c, _ in seen if c.schedule == "cosine"]
    wsd = [c for c, _ in seen if c.schedule == "wsd"]
    assert cosine and wsd
    assert all(c.schedule_params["warmup_fraction"] == 0.1 for c in cosine)
    assert len({c.schedule_params["warmup_fraction"] for c in wsd}) > 1


def test_user_range_narrows_the_search() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw", "sgd"], ranges={"adamw.lr": (2e-3, 3e-3)}))
    seen = sample_many(space, 40)
    adamw_lrs = [c.hparams["lr"] for c, _ in seen if c.family == "adamw"]
    sgd_lrs = [c.hparams["lr"] for c, _ in seen if c.family == "sgd"]
    assert adamw_lrs and all(2e-3 <= lr <= 3e-3 for lr in adamw_lrs)
    assert any(lr > 3e-3 for lr in sgd_lrs)  # SGD keeps its own, much larger range


def test_a_range_makes_an_unsearched_hyperparameter_searched() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["muon"], ranges={"muon.ns_steps": (3, 7)}))
    steps = {c.hparams["ns_steps"] for c, _ in sample_many(space, 30)}
    assert steps <= {3, 4, 5, 6, 7} and len(steps) > 1


def test_log1m_hyperparameters_are_sampled_as_one_minus_x_within_bounds() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw"]))
    hp = get_family("adamw").hparam("beta1")
    seen = sample_many(space, 200)
    betas = [c.hparams["beta1"] for c, _ in seen]
    assert all(hp.low <= b <= hp.high + 1e-12 for b in betas)
    assert all("adamw.one_minus_beta1" in params for _, params in seen)
    # log-uniform in 1-x: half the samples fall below the geometric mean of (1-high, 1-low)
    geometric_mid = math.sqrt((1 - hp.high) * (1 - hp.low))
    below = sum(1 - b < geometric_mid for b in betas) / len(betas)
    assert 0.35 < below < 0.65


def test_log_scale_hyperparameters_are_log_uniform() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw"], schedules=["cosine"]))
    lrs = [c.hparams["lr"] for c, _ in sample_many(space, 200)]
    below_mid_decade = sum(lr < math.sqrt(1e-4 * 1e-2) for lr in lrs) / len(lrs)
    assert 0.35 < below_mid_decade < 0.65


def test_schedule_free_families_get_the_constant_schedule_without_asking() -> None:
    free = [name for name, fam in FAMILIES.items() if fam.schedule_free]
    if not free:
        pytest.skip("the catalog has no schedule-free family yet")
    space = SearchSpace.from_spec(SearchSpec(families=[free[0], "adamw"], schedules=["cosine", "wsd"]))
    for config, params in sample_many(space, 30):
        if config.family == free[0]:
            assert config.schedule == "constant" and "schedule" not in params


def test_params_round_trip_to_the_same_config() -> None:
    space = SearchSpace.from_spec(SearchSpec(fixed={"wsd.cooldown": "linear"}))
    for config, params in sample_many(space, 40):
        assert space.to_params(config) == pytest.approx(params)
        back = space.to_config(params)
        assert back.family == config.family and back.schedule == config.schedule
        assert back.resolved_hparams() == pytest.approx(config.resolved_hparams())
        assert back.resolved_schedule_params() == pytest.approx(config.resolved_schedule_params())


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_enqueued_config_comes_back_from_define_by_run() -> None:
    warm = TrialConfig(family="lion", hparams={"lr": 2e-4, "cautious": True}, schedule="wsd")
    space = SearchSpace.from_spec(SearchSpec(initial_configs=[warm]))
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(multivariate=True, group=True, seed=0))
    study.enqueue_trial(space.to_params(warm))
    trial = study.ask()
    returned = TrialConfig.model_validate(space.define_by_run(trial)["trial_config"])
    assert returned == warm  # including the unsearched 'cautious'
    assert trial.params["lion.lr"] == pytest.approx(2e-4)


def test_initial_config_outside_the_space_is_an_error_naming_it() -> None:
    with pytest.raises(SpecError, match=r"search\.initial_configs\.0"):
        SearchSpace.from_spec(SearchSpec(families=["adamw"], initial_configs=[TrialConfig(family="sgd")]))


def test_warm_start_config_outside_the_space_is_skipped() -> None:
    space = SearchSpace.from_spec(SearchSpec(families=["adamw"]), warm_start_configs=[TrialConfig(family="sgd")])
    assert space.warm_start == ()


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"adamw.lr": (0.0, 1e-2)}, "out of range"),
        ({"wsd.warmup_fraction": (-0.1, 0.2)}, "out of range"),
        ({"adamw.beta2": (0.9, 1.0)}, "out of range|below 1"),
        ({"wsd.cooldown": (0.0, 1.0)}, "search.fixed"),
    ],
)
def test_bad_ranges_name_the_field_and_the_fix(ranges: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        SearchSpace.from_spec(SearchSpec(families=["adamw"], schedules=["wsd"], ranges=ranges))
    assert any(loc.startswith("search.ranges.") for loc, _ in info.value.errors)


def test_fixed_key_for_a_family_outside_the_study_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"search\.fixed\.sgd\.lr"):
        SearchSpace.from_spec(SearchSpec(families=["adamw"], fixed={"sgd.lr": 0.1}))


def test_fixed_value_outside_the_valid_interval_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"search\.fixed\.lr"):
        SearchSpace.from_spec(SearchSpec(families=["adamw"], fixed={"lr": -1.0}))
