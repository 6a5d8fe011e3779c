"""The Optuna sampler a study asks for, built for a conditional space."""

from __future__ import annotations

import importlib.util
import warnings

import optuna

from optforge.search.space import SearchSpace
from optforge.spec import SearchSpec, SpecError


def startup_trials(n_trials: int) -> int:
    """Random trials before the model-based sampler takes over.

    Optuna's default of 10 is tuned for budgets of a hundred trials or more; a 16-trial study would
    spend most of its budget at random. A quarter of the budget, at least 3 (a density model needs a
    few points) and at most 10 (Optuna's own default, enough for the widest space we ship).
    """
    return max(3, min(10, n_trials // 4))


def validate_sampler(search: SearchSpec, space: SearchSpace) -> None:
    """Raise SpecError when ``search.sampler`` cannot work on ``space`` or is not installed."""
    if search.sampler == "cmaes":
        if len(space.families) != 1:
            raise SpecError(
                [
                    (
                        "search.sampler",
                        "'cmaes' needs a single fixed family (CMA-ES models one continuous space and "
                        "cannot branch on the family): set search.families to one family, e.g. [adamw], or use 'tpe'",
                    )
                ],
                source="SearchSpec",
            )
        if importlib.util.find_spec("cmaes") is None:
            raise SpecError(
                [("search.sampler", "'cmaes' needs the cmaes package: pip install cmaes")], source="SearchSpec"
            )
    if search.sampler in ("gp", "qmc") and importlib.util.find_spec("scipy") is None:
        raise SpecError([("search.sampler", f"{search.sampler!r} needs scipy: pip install scipy")], source="SearchSpec")


def build_sampler(search: SearchSpec, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The sampler for ``search.sampler``, seeded with ``search.seed``.

    ``tpe`` (default) is multivariate TPE with ``group=True``: plain multivariate TPE models only the
    dimensions shared by *every* past trial, which in a conditional space is just ``family`` and
    ``schedule``, so it falls back to independent sampling for everything that matters. ``group=True``
    splits the history by which dimensions each trial had (one group per family, per schedule) and
    fits a joint model inside each group, so AdamW's LR is modelled jointly with its betas.
    ``constant_liar`` keeps parallel workers from all proposing the same point while trials run.
    """
    validate_sampler(search, space)
    seed = search.seed
    n_startup = startup_trials(search.n_trials)
    match search.sampler:
        case "tpe":
            with warnings.catch_warnings():  # group=True is flagged experimental; it is what makes TPE work here
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.TPESampler(
                    multivariate=True, group=True, constant_liar=True, n_startup_trials=n_startup, seed=seed
                )
        case "gp":
            # GP models one shared space; conditional dimensions outside it are sampled at random.
            return optuna.samplers.GPSampler(n_startup_trials=n_startup, seed=seed)
        case "cmaes":
            # CMA-ES needs a handful of points per generation; it seeds itself, no random startup needed.
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        case "qmc":
            # Scrambled Sobol: low discrepancy without the fixed first point of an unscrambled sequence.
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
        case "random":
            return optuna.samplers.RandomSampler(seed=seed)
    raise AssertionError(search.sampler)  # the spec's Literal rules out anything else
