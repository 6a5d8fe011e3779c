"""The conditional search space, defined by run from the catalog, and its two-way mapping to TrialConfig.

Optuna asks in this order: the optimizer family, that family's hyperparameters, the schedule (skipped
for schedule-free families, which always run ``constant``), then the schedule's parameters. Every
dimension is named after its owner — ``"adamw.lr"``, ``"wsd.decay_fraction"`` — so conditional branches
never share a dimension: AdamW's LR and SGD's LR live on ranges two decades apart, and a sampler that
mixed their observations would learn nothing about either.

A ``log1m`` hyperparameter (Adam's betas, momentum) is searched as ``1 - x`` on a log scale and named
``"<owner>.one_minus_<name>"``, so 0.9 → 0.99 → 0.999 are equal steps for the sampler too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from optforge.catalog import DEFAULT_SEARCH_FAMILIES, HParam, Value, get_family, get_schedule
from optforge.spec import SearchSpec, SpecError, TrialConfig

# Cosine and linear decay are the two strong defaults for a fixed budget (Defazio et al. 2023); WSD is
# the one whose stable phase can be branched (schedule-aware ASHA). Users name others explicitly.
DEFAULT_SEARCH_SCHEDULES: tuple[str, ...] = ("cosine", "linear", "wsd")
FAMILY_KEY = "family"
SCHEDULE_KEY = "schedule"
ONE_MINUS = "one_minus_"


def _dimension(owner: str, hp: HParam) -> str:
    """The Optuna parameter name of ``hp`` when ``owner`` (a family or schedule) searches it."""
    return f"{owner}.{ONE_MINUS}{hp.name}" if hp.scale == "log1m" and hp.kind == "float" else f"{owner}.{hp.name}"


@dataclass(frozen=True)
class SearchSpace:
    """Which families and schedules a study searches, what the user fixed, and which ranges changed.

    Build it with :meth:`from_spec`; it validates every fixed value and range against the catalog and
    raises :class:`SpecError` naming the ``search.*`` field and the fix.
    """

    families: tuple[str, ...]
    schedules: tuple[str, ...]
    fixed: Mapping[str, Value] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    mup: bool = False
    warm_start: tuple[TrialConfig, ...] = ()

    @classmethod
    def from_spec(cls, search: SearchSpec, *, warm_start_configs: Sequence[TrialConfig] = ()) -> SearchSpace:
        """The space of ``search``; ``search.initial_configs`` then ``warm_start_configs`` are evaluated first.

        An initial config outside the space is an error (the user wrote it); a warm-start config from
        storage that does not fit the user's restrictions is skipped, since it is only a suggestion.
        """
        families = tuple(search.families or DEFAULT_SEARCH_FAMILIES)
        schedules = tuple(search.schedules or DEFAULT_SEARCH_SCHEDULES)
        space = cls(
            families=families, schedules=schedules, fixed=dict(search.fixed), ranges=dict(search.ranges), mup=search.mup
        )
        space._check_fixed_and_ranges()
        warm: list[TrialConfig] = []
        errors = []
        for i, config in enumerate(search.initial_configs):
            problem = space.misfit(config)
            if problem:
                errors.append((f"search.initial_configs.{i}", problem))
            warm.append(config)
        if errors:
            raise SpecError(errors, source="SearchSpec")
        warm.extend(c for c in warm_start_configs if space.misfit(c) is None)
        return cls(**{**space.__dict__, "warm_start": tuple(warm)})

    # ---- lookups -------------------------------------------------------------------------------

    def _override(self, table: Mapping[str, Any], owner: str, name: str) -> Any | None:
        """``table['<owner>.<name>']``, else ``table['<name>']``: the specific key wins over the general one."""
        specific = f"{owner}.{name}"
        if specific in table:
            return table[specific]
        return table.get(name)

    def fixed_value(self, owner: str, hp: HParam) -> Value | None:
        """The value the user fixed for ``hp`` of ``owner``, or None."""
        return self._override(self.fixed, owner, hp.name)

    def bounds(self, owner: str, hp: HParam) -> tuple[float, float] | None:
        """The search interval of ``hp`` for ``owner``: the user's range, else the catalog's; None if not searched."""
        user = self._override(self.ranges, owner, hp.name)
        if user is not None:
            return float(user[0]), float(user[1])
        if not hp.searched or hp.kind in ("bool", "choice"):
            return None
        assert hp.low is not None and hp.high is not None  # the catalog guarantees it for searched numbers
        return float(hp.low), float(hp.high)

    def is_searched(self, owner: str, hp: HParam) -> bool:
        """Whether Optuna samples ``hp``: not fixed by the user, and searched by default or given a range."""
        if self.fixed_value(owner, hp) is not None:
            return False
        if hp.kind in ("bool", "choice"):
            return hp.searched
        return self.bounds(owner, hp) is not None

    def schedules_for(self, family: str) -> tuple[str, ...]:
        """Schedule-free families run ``constant`` (their warmup is ``warmup_fraction``); others, the study's."""
        return ("constant",) if get_family(family).needs_constant_schedule else self.schedules

    # ---- define-by-run -------------------------------------------------------------------------

    def _suggest(self, trial: optuna.Trial, owner: str, hp: HParam) -> Value:
        name = _dimension(owner, hp)
        if hp.kind == "bool":
            return bool(trial.suggest_categorical(name, [False, True]))
        if hp.kind == "choice":
            return trial.suggest_categorical(name, list(hp.choices or ()))
        low, high = self.bounds(owner, hp)  # type: ignore[misc]
        if hp.kind == "int":
            return trial.suggest_int(name, int(low), int(high), log=hp.scale == "log" and low > 0)
        if hp.scale == "log1m":
            return 1.0 - trial.suggest_float(name, 1.0 - high, 1.0 - low, log=True)
        return trial.suggest_float(name, low, high, log=hp.scale == "log")

    def _values(self, trial: optuna.Trial, owner: str, hparams: Sequence[HParam]) -> dict[str, Value]:
        values: dict[str, Value] = {}
        for hp in hparams:
            fixed = self.fixed_value(owner, hp)
            if fixed is not None:
                values[hp.name] = fixed
            elif self.is_searched(owner, hp):
                values[hp.name] = self._suggest(trial, owner, hp)
        return values

    def sample(self, trial: optuna.Trial) -> TrialConfig:
        """Ask ``trial`` for one point of the space, in the conditional order, and return its TrialConfig."""
        family = (
            self.families[0] if len(self.families) == 1 else trial.suggest_categorical(FAMILY_KEY, list(self.families))
        )
        hparams = self._values(trial, family, get_family(family).hparams)
        schedules = self.schedules_for(family)
        schedule = schedules[0] if len(schedules) == 1 else trial.suggest_categorical(SCHEDULE_KEY, list(schedules))
        params = self._values(trial, schedule, get_schedule(schedule).params)
        return TrialConfig(family=family, hparams=hparams, schedule=schedule, schedule_params=params, mup=self.mup)

    def define_by_run(self, trial: optuna.Trial) -> dict[str, Any]:
        """The function handed to ``OptunaSearch(space=...)``: samples, and returns the TrialConfig as a constant.

        Ray merges the returned dict into the trial's config, so each trial carries its full, validated
        ``trial_config``. Warm-start trials are Optuna's first trials (enqueued in order, numbered
        0..k-1): their suggestions come back as the enqueued values, and the returned config is the
        warm-start config itself, so values the study does not search survive too.
        """
        config = self.sample(trial)
        if trial.number < len(self.warm_start):
            config = self.warm_start[trial.number]
        return {"trial_config": config.model_dump(mode="json")}

    # ---- params <-> config ---------------------------------------------------------------------

    def to_params(self, config: TrialConfig) -> dict[str, Value]:
        """The flat Optuna parameters that :meth:`sample` would have produced for ``config``.

        Used to enqueue warm-start configurations (``OptunaSearch(points_to_evaluate=...)``).
        """
        params: dict[str, Value] = {}
        if len(self.families) > 1:
            params[FAMILY_KEY] = config.family
        for hp in get_family(config.family).hparams:
            if self.is_searched(config.family, hp):
                params[_dimension(config.family, hp)] = _encode(hp, config.resolved_hparams()[hp.name])
        if len(self.schedules_for(config.family)) > 1:
            params[SCHEDULE_KEY] = config.schedule
        for hp in get_schedule(config.schedule).params:
            if self.is_searched(config.schedule, hp):
                params[_dimension(config.schedule, hp)] = _encode(hp, config.resolved_schedule_params()[hp.name])
        return params

    def to_config(self, params: Mapping[str, Any]) -> TrialConfig:
        """The TrialConfig for flat Optuna parameters (the inverse of :meth:`to_params`).

        Dimensions missing from ``params`` take the user's fixed value, else the catalog default.
        """
        family = str(params.get(FAMILY_KEY, self.families[0]))
        schedules = self.schedules_for(family)
        schedule = str(params.get(SCHEDULE_KEY, schedules[0]))
        return TrialConfig(
            family=family,
            hparams=self._decode(params, family, get_family(family).hparams),
            schedule=schedule,
            schedule_params=self._decode(params, schedule, get_schedule(schedule).params),
            mup=self.mup,
        )

    def _decode(self, params: Mapping[str, Any], owner: str, hparams: Sequence[HParam]) -> dict[str, Value]:
        values: dict[str, Value] = {}
        for hp in hparams:
            name = _dimension(owner, hp)
            if name in params:
                values[hp.name] = 1.0 - params[name] if name != f"{owner}.{hp.name}" else params[name]
            elif f"{owner}.{hp.name}" in params:
                values[hp.name] = params[f"{owner}.{hp.name}"]
            elif (fixed := self.fixed_value(owner, hp)) is not None:
                values[hp.name] = fixed
        return values

    def misfit(self, config: TrialConfig) -> str | None:
        """Why ``config`` lies outside this space (a family or schedule the study excludes), or None."""
        if config.family not in self.families:
            return f"family {config.family!r} is not among search.families {list(self.families)}"
        allowed = self.schedules_for(config.family)
        if config.schedule not in allowed:
            return f"schedule {config.schedule!r} is not among the schedules searched for it {list(allowed)}"
        return None

    # ---- validation ----------------------------------------------------------------------------

    def _owners(self, key: str) -> list[tuple[str, HParam]]:
        """Every (owner, hyperparameter) in this space that a ``fixed``/``ranges`` key applies to."""
        scope, _, name = key.rpartition(".")
        found: list[tuple[str, HParam]] = []
        for fam in self.families:
            for hp in get_family(fam).hparams:
                if hp.name == name and scope in ("", fam):
                    found.append((fam, hp))
        for sched in {*self.schedules, *(s for f in self.families for s in self.schedules_for(f))}:
            for hp in get_schedule(sched).params:
                if hp.name == name and scope in ("", sched):
                    found.append((sched, hp))
        return found

    def _check_fixed_and_ranges(self) -> None:
        errors: list[tuple[str, str]] = []
        for key, value in self.fixed.items():
            owners = self._owners(key)
            if not owners:
                errors.append(
                    (
                        f"search.fixed.{key}",
                        "applies to no family or schedule this study searches; "
                        "check search.families and search.schedules",
                    )
                )
            for owner, hp in owners:
                try:
                    hp.check(value)
                except ValueError as exc:
                    errors.append((f"search.fixed.{key}", f"{owner}: {exc}"))
        for key, (low, high) in self.ranges.items():
            owners = self._owners(key)
            if not owners:
                errors.append(
                    (
                        f"search.ranges.{key}",
                        "applies to no family or schedule this study searches; "
                        "check search.families and search.schedules",
                    )
                )
            for owner, hp in owners:
                problem = _range_problem(hp, low, high)
                if problem:
                    errors.append((f"search.ranges.{key}", f"{owner}: {problem}"))
        if errors:
            raise SpecError(errors, source="SearchSpec")


def _range_problem(hp: HParam, low: float, high: float) -> str | None:
    """Why [low, high] cannot be searched for ``hp``, with the fix; None if it can."""
    if hp.kind in ("bool", "choice"):
        return f"is a {hp.kind} hyperparameter; fix it with search.fixed instead of giving a range"
    for bound in (low, high):
        try:
            hp.check(bound)
        except ValueError as exc:
            return f"{exc}; give a range inside {hp.describe_valid()}"
    if hp.kind == "int" and (float(low) != int(low) or float(high) != int(high)):
        return "an integer hyperparameter needs whole-number bounds"
    if hp.scale == "log" and low <= 0:
        return f"is searched on a log scale, so the range must be positive; got low={low}"
    if hp.scale == "log1m" and high >= 1:
        return f"is searched as 1-x on a log scale, so the range must stay below 1; got high={high}"
    return None


def _encode(hp: HParam, value: Value) -> Value:
    """A hyperparameter value as the Optuna dimension stores it (``1 - x`` for log1m floats)."""
    if hp.scale == "log1m" and hp.kind == "float":
        return 1.0 - float(value)
    return value


def is_finite_number(value: object) -> bool:
    """True for a real number that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
