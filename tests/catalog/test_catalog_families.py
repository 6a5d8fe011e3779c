"""The family registry itself: complete, consistent, and readable without torch."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from optforge.catalog import DEFAULT_SEARCH_FAMILIES, FAMILIES, Family, HParam, get_family
from optforge.catalog._families_tuning_free import LOOKAHEAD_INNER
from optforge.catalog.families import _index

REQUIRED = [
    "adamw",
    "adam",
    "nadam",
    "radam",
    "sgd",
    "lion",
    "adan",
    "adafactor",
    "muon",
    "adamuon",
    "shampoo",
    "soap",
    "kron",
    "sophia",
    "ademamix",
    "adopt",
    "laprop",
    "adabelief",
    "adabound",
    "adamp",
    "grams",
    "spam",
    "stable_spam",
    "came",
    "conda",
    "exadam",
    "fadam",
    "mars",
    "lamb",
    "lars",
    "lookahead",
    "ranger21",
    "schedulefree_adamw",
    "schedulefree_sgd",
    "prodigy",
    "dadapt_adam",
    "diffgrad",
    "gravity",
]

families = pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))


def test_every_family_the_engine_issue_asks_for_is_registered() -> None:
    assert set(REQUIRED) <= set(FAMILIES)


@families
def test_every_family_documents_its_source_and_memory(family: Family) -> None:
    assert family.reference.strip() and family.state_per_param.strip()
    assert any(hp.name == "lr" for hp in family.hparams), "every family exposes its learning rate as 'lr'"


@families
def test_every_default_is_a_valid_value_and_every_search_range_is_valid(family: Family) -> None:
    for hp in family.hparams:
        assert hp.check(hp.default) == hp.default, f"{family.name}.{hp.name} default is invalid"
        if hp.searched and hp.kind in ("float", "int"):
            assert hp.check(hp.low) is not None and hp.check(hp.high) is not None, f"{family.name}.{hp.name}"
            if hp.scale == "log":
                assert hp.low > 0, f"{family.name}.{hp.name}: a log range must stay above 0"
            if hp.scale == "log1m":
                assert hp.high < 1, f"{family.name}.{hp.name}: a 1-x log range must stay below 1"
        if hp.searched and hp.kind == "choice":
            assert hp.default in (hp.choices or ())


def test_only_matrix_normalized_updates_follow_the_spectral_mup_rule() -> None:
    spectral = {name for name, f in FAMILIES.items() if f.mup_rule == "spectral"}
    assert spectral == {"muon", "kron"}
    # Their updates end entry-wise normalized (the coordinate check in docs/mup.md), so they scale like Adam.
    assert all(FAMILIES[name].mup_rule == "adaptive" for name in ("adamuon", "shampoo", "soap"))
    assert {name for name, f in FAMILIES.items() if f.routing == "hidden_matrices"} == {"muon", "adamuon"}
    assert {name for name, f in FAMILIES.items() if f.mup_rule == "sgd"} == {"sgd", "schedulefree_sgd"}


def test_family_flags_mark_the_families_that_need_trainer_support() -> None:
    assert {n for n, f in FAMILIES.items() if f.needs_create_graph} == {"sophia"}
    assert {n for n, f in FAMILIES.items() if f.schedule_free} == {"schedulefree_adamw", "schedulefree_sgd"}
    assert {n for n, f in FAMILIES.items() if f.total_steps_arg} == {"ranger21", "ademamix"}


def test_default_search_families_are_registered_distinct_and_few() -> None:
    assert set(DEFAULT_SEARCH_FAMILIES) <= set(FAMILIES)
    assert len(set(DEFAULT_SEARCH_FAMILIES)) == len(DEFAULT_SEARCH_FAMILIES)
    assert 6 <= len(DEFAULT_SEARCH_FAMILIES) <= 10


def test_lookahead_inner_choices_are_families_that_take_lookaheads_hyperparameters() -> None:
    shared = {hp.name for hp in get_family("lookahead").hparams} - {"inner", "k", "alpha"}
    for name in LOOKAHEAD_INNER:
        assert shared <= {hp.name for hp in get_family(name).hparams}, name
        assert get_family(name).hparam("lr").low == get_family("lookahead").hparam("lr").low


def test_registering_a_family_name_twice_is_an_error() -> None:
    adamw = get_family("adamw")
    with pytest.raises(ValueError, match="'adamw' is registered twice"):
        _index((adamw,), (adamw,))


def test_an_unknown_family_error_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown optimizer family 'adamm'") as err:
        get_family("adamm")
    assert "adamw" in str(err.value) and "lion" in str(err.value)


def test_a_searched_number_needs_a_range() -> None:
    with pytest.raises(ValueError, match="needs low and high"):
        HParam(name="lr", default=1e-3, low=None, high=None, valid=(0, math.inf))


def test_the_catalog_and_its_renderer_import_without_torch() -> None:
    code = "import sys, optforge.catalog, optforge.catalog.render; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
