"""A bad family, hyperparameter or value is refused when the TrialConfig is made, with a message that
names the field and what is allowed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from optforge.spec import TrialConfig


def test_an_unknown_family_is_refused_with_the_known_families() -> None:
    with pytest.raises(ValidationError, match="unknown optimizer family 'lionn'") as err:
        TrialConfig(family="lionn")
    assert "family" in str(err.value) and "lion" in str(err.value)


def test_a_hyperparameter_the_family_does_not_take_is_refused_with_the_ones_it_takes() -> None:
    with pytest.raises(ValidationError, match="takes no hyperparameter 'momentum'") as err:
        TrialConfig(family="adamw", hparams={"momentum": 0.9})
    assert "beta1" in str(err.value)


def test_an_out_of_range_value_is_refused_with_the_valid_interval() -> None:
    with pytest.raises(ValidationError, match=r"beta2=1\.0 is out of range; allowed: \[0, 1\)"):
        TrialConfig(family="adamw", hparams={"beta2": 1.0})
    with pytest.raises(ValidationError, match=r"lr=0\.0 is out of range; allowed: \(0, inf\)"):
        TrialConfig(family="lion", hparams={"lr": 0})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        TrialConfig(family="sophia", hparams={"p": -1, "update_period": 2.5, "rho": 0.1})
    message = str(err.value)
    assert "p=-1.0 is out of range" in message and "whole number" in message and "'rho'" in message


def test_choice_and_flag_hyperparameters_only_take_their_values() -> None:
    with pytest.raises(ValidationError, match=r"inner must be one of \['adamw', 'radam', 'nadam'\]"):
        TrialConfig(family="lookahead", hparams={"inner": "sgd"})
    with pytest.raises(ValidationError, match="cautious must be true or false"):
        TrialConfig(family="lion", hparams={"cautious": "yes"})


def test_a_valid_config_resolves_to_the_family_defaults_plus_overrides() -> None:
    config = TrialConfig(family="ademamix", hparams={"alpha": 8})
    resolved = config.resolved_hparams()
    assert resolved["alpha"] == 8.0 and resolved["beta3"] == 0.9999 and resolved["lr"] == 1e-3


def test_schedule_free_families_refuse_a_decaying_schedule() -> None:
    with pytest.raises(ValidationError, match="schedule-free"):
        TrialConfig(family="schedulefree_adamw", schedule="cosine")
    assert TrialConfig(family="schedulefree_adamw", schedule="constant").family == "schedulefree_adamw"


def test_families_that_need_a_constant_schedule_default_to_it_and_refuse_others() -> None:
    assert TrialConfig(family="schedulefree_adamw").schedule == "constant"
    assert TrialConfig(family="ranger21").schedule == "constant"
    assert TrialConfig(family="adamw").schedule == "cosine"
    with pytest.raises(ValidationError, match="runs its own warmup and decay"):
        TrialConfig(family="ranger21", schedule="wsd")
    with pytest.raises(ValidationError, match="schedule-free"):
        TrialConfig(family="schedulefree_sgd", schedule="cosine")
