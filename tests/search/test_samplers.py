"""Every sampler a study can ask for proposes valid configurations of the conditional space. No Ray."""

from __future__ import annotations

import importlib.util

import optuna
import pytest

from optforge.search.samplers import build_sampler, startup_trials
from optforge.search.space import SearchSpace
from optforge.spec import SearchSpec, SpecError

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("sampler", ["tpe", "gp", "qmc", "random"])
def test_sampler_proposes_valid_configs_and_learns_from_results(sampler: str) -> None:
    search = SearchSpec(sampler=sampler, n_trials=6, families=["adamw", "sgd"], schedules=["cosine", "wsd"])
    space = SearchSpace.from_spec(search)
    study = optuna.create_study(sampler=build_sampler(search, space))
    for _ in range(search.n_trials):
        trial = study.ask()
        config = space.sample(trial)  # TrialConfig validates every value against the catalog
        study.tell(trial, config.resolved_hparams()["lr"])
    assert len(study.trials) == search.n_trials


def test_tpe_is_multivariate_and_grouped() -> None:
    search = SearchSpec()
    sampler = build_sampler(search, SearchSpace.from_spec(search))
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate and sampler._group  # the reason it copes with a conditional space


def test_cmaes_needs_a_single_family() -> None:
    search = SearchSpec(sampler="cmaes", families=["adamw", "sgd"])
    with pytest.raises(SpecError, match="single fixed family"):
        build_sampler(search, SearchSpace.from_spec(search))


@pytest.mark.skipif(importlib.util.find_spec("cmaes") is None, reason="the cmaes package is not installed")
def test_cmaes_with_one_family_samples_it() -> None:
    search = SearchSpec(sampler="cmaes", families=["adamw"], schedules=["cosine"], n_trials=6)
    space = SearchSpace.from_spec(search)
    study = optuna.create_study(sampler=build_sampler(search, space))
    for _ in range(6):
        trial = study.ask()
        study.tell(trial, space.sample(trial).resolved_hparams()["lr"])


def test_startup_trials_scale_with_the_budget() -> None:
    assert startup_trials(8) == 3
    assert startup_trials(24) == 6
    assert startup_trials(400) == 10
