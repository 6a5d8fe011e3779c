"""Catalog entries against the installed libraries: every keyword they produce is one the constructor declares.

pytorch-optimizer's classes accept ``**kwargs`` and silently ignore unknown names, so these checks (and the
same check ``construct`` runs at build time) are what catch a misspelt or renamed hyperparameter.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from pytorch_optimizer import Lion
from torch import nn

from optforge.catalog import FAMILIES, Family, get_family
from optforge.engine.optimizers import build_optimizer, constructor_kwargs, resolve_constructor, unknown_kwargs
from optforge.engine.optimizers.build import construct
from optforge.spec import TrialConfig

CLASS_FAMILIES = [f for f in FAMILIES.values() if isinstance(resolve_constructor(f), type)]


@pytest.mark.parametrize("family", CLASS_FAMILIES, ids=[f.name for f in CLASS_FAMILIES])
def test_every_constructor_keyword_of_a_class_family_is_declared_by_the_installed_class(family: Family) -> None:
    cls = resolve_constructor(family)
    defaults = {hp.name: hp.default for hp in family.hparams}
    kwargs = constructor_kwargs(family, defaults, total_steps=100)
    assert unknown_kwargs(cls, kwargs) == [], f"{family.name}: {cls.__qualname__} does not take these"


@pytest.mark.parametrize("family", CLASS_FAMILIES, ids=[f.name for f in CLASS_FAMILIES])
def test_a_class_family_sets_the_weight_decay_its_constructor_takes(family: Family) -> None:
    """Otherwise the library's own default decay (0.1 for FAdam, 0.01 for SOAP) would apply unseen."""
    if "weight_decay" in inspect.signature(resolve_constructor(family).__init__).parameters:
        assert "weight_decay" in {hp.name for hp in family.hparams} | set(family.fixed)


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_every_constructor_reference_resolves(family: Family) -> None:
    assert callable(resolve_constructor(family))


def test_constructor_kwargs_packs_betas_in_order_and_adds_fixed_arguments() -> None:
    family = get_family("ademamix")
    hparams = family.resolve({"beta1": 0.8, "beta2": 0.99, "beta3": 0.999})
    kwargs = constructor_kwargs(family, hparams, total_steps=500)
    assert kwargs["betas"] == (0.8, 0.99, 0.999)
    assert not {"beta1", "beta2", "beta3"} & set(kwargs)
    assert kwargs["weight_decouple"] is True  # from family.fixed
    assert kwargs["t_alpha_beta3"] == 500  # the step budget, under the constructor's own name


def test_constructor_kwargs_passes_beta_names_unchanged_when_a_family_does_not_pack_them() -> None:
    kwargs = constructor_kwargs(get_family("gravity"), {"lr": 0.01, "alpha": 0.01, "beta": 0.9})
    assert kwargs == {"lr": 0.01, "alpha": 0.01, "beta": 0.9}
    assert constructor_kwargs(get_family("sgd"), {"lr": 0.1})["nesterov"] is True


def test_constructor_kwargs_without_a_step_budget_names_total_steps() -> None:
    family = get_family("ranger21")
    with pytest.raises(ValueError, match="total_steps") as err:
        constructor_kwargs(family, family.resolve({}))
    assert "ranger21" in str(err.value)


def test_construct_rejects_keywords_the_class_does_not_declare() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(TypeError, match="betass"):
        construct(torch.optim.AdamW, params, {"betass": (0.9, 0.99)})
    # Lion swallows **kwargs: the misspelling would be ignored without this check.
    with pytest.raises(TypeError, match="lrr"):
        construct(Lion, params, {"lrr": 1e-4})
    assert isinstance(construct(Lion, params, {"lr": 1e-4, "cautious": True}), Lion)


BUILDER_FAMILIES = [f for f in FAMILIES.values() if not isinstance(resolve_constructor(f), type)]


@pytest.mark.parametrize("family", BUILDER_FAMILIES, ids=[f.name for f in BUILDER_FAMILIES])
def test_a_builder_family_builds_the_library_classes_it_documents(family: Family) -> None:
    assert family.implementation, f"{family.name}: builder families say which classes they assemble"
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = build_optimizer(model, TrialConfig(family=family.name), total_steps=10)
    parts = getattr(optimizer, "parts", [optimizer])  # a CompositeOptimizer lists its parts
    assert {_public_name(part) for part in parts} == set(family.implementation.split(" + "))


def _public_name(optimizer: torch.optim.Optimizer) -> str:
    """``torch.optim.Muon`` for torch's classes, ``pytorch_optimizer.AdaMuon`` for pytorch-optimizer's."""
    module = type(optimizer).__module__
    package = "torch.optim" if module.startswith("torch.optim") else module.split(".")[0]
    return f"{package}.{type(optimizer).__name__}"
