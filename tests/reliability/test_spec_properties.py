"""Property tests of spec validation: every valid spec round-trips, every broken one names its field.

Valid specs are generated from the catalog (every family with hyperparameters drawn inside their valid
intervals, every schedule, compatible model/data pairs) and from the bounds the spec models declare.
Invalid ones are a valid spec with one mutation: a wrong type, a number out of its bounds, an unknown
key, an unknown family, or a hyperparameter outside its valid interval. ``optforge.spec.load_spec``
must refuse each with an error located at the mutated field.
"""

from __future__ import annotations

import functools
import math
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from optforge.catalog import FAMILIES, SCHEDULES, HParam
from optforge.spec import (
    DataSpec,
    ModelSpec,
    SearchSpec,
    SpecError,
    StudySpec,
    TaskSpec,
    TrialConfig,
    TrialResources,
    load_spec,
)

# Each property runs this many specs: enough to reach every family and schedule a few times over, and
# validation takes about a millisecond a spec, so each test stays within seconds on a busy 2-core machine.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Stand-ins for infinite valid bounds: large, but finite (JSON has no infinity).
BIG = 1e6

Path = tuple[str | int, ...]

# --- valid specs, from the catalog ----------------------------------------------------------------------


@functools.cache  # strategies are built once per hyperparameter: building (and validating) them is the slow part
def valid_value(hp: HParam) -> st.SearchStrategy[Any]:
    """Values ``hp.check`` accepts: inside the valid interval (and the search range, half of the time)."""
    if hp.kind == "bool":
        return st.booleans()
    if hp.kind == "choice":
        return st.sampled_from(hp.choices or ())
    lo, hi = _finite_interval(hp)
    open_lo, open_hi = hp.valid_open
    if hp.kind == "int":
        return st.integers(math.floor(lo) + open_lo, math.ceil(hi) - open_hi)
    interval = st.floats(lo, hi, exclude_min=open_lo, exclude_max=open_hi, allow_nan=False)
    if hp.low is None or hp.high is None:
        return interval
    return st.one_of(st.floats(hp.low, hp.high, allow_nan=False).filter(lambda v: _accepts(hp, v)), interval)


def _finite_interval(hp: HParam) -> tuple[float, float]:
    """``hp.valid`` with an infinite end moved BIG away from the other end (or from 0)."""
    lo, hi = hp.valid
    if math.isinf(lo) and math.isinf(hi):
        return -BIG, BIG
    if math.isinf(hi):
        return lo, max(lo, 0) + BIG
    if math.isinf(lo):
        return min(hi, 0) - BIG, hi
    return lo, hi


def _accepts(hp: HParam, value: object) -> bool:
    try:
        hp.check(value)
    except ValueError:
        return False
    return True


@functools.cache
def _subsets(params: tuple[HParam, ...]) -> st.SearchStrategy[list[HParam]]:
    return st.lists(st.sampled_from(params), max_size=4, unique_by=lambda hp: hp.name) if params else st.just([])


def some_of(draw: st.DrawFn, params: tuple[HParam, ...]) -> dict[str, Any]:
    """A dict of some of ``params`` (none, one or several), each with a valid value."""
    return {hp.name: draw(valid_value(hp)) for hp in draw(_subsets(params))}


FAMILY_NAMES = st.sampled_from(sorted(FAMILIES))
SCHEDULE_NAMES = st.sampled_from(sorted(SCHEDULES))


@st.composite
def trial_configs(draw: st.DrawFn) -> dict[str, Any]:
    family = FAMILIES[draw(FAMILY_NAMES)]
    schedule_name = "constant" if family.needs_constant_schedule else draw(SCHEDULE_NAMES)
    schedule = SCHEDULES[schedule_name]
    return {
        "family": family.name,
        "hparams": some_of(draw, family.hparams),
        "schedule": schedule_name,
        "schedule_params": some_of(draw, schedule.params),
        "mup": draw(st.booleans()),
    }


# Model/data pairs TaskSpec accepts (a transformer needs text, text needs a transformer, a cnn needs images).
PAIRS = [("mlp", d) for d in ("digits", "iris", "wine", "breast_cancer", "diabetes", "teacher_student_regression",
         "teacher_student_classification")] + [("cnn", "digits"), ("transformer", "text")]  # fmt: skip
# A spec name: what StudySpec.name's pattern allows, not blank.
NAMES = st.text(st.sampled_from("abcXYZ019_ .:/+@-") | st.characters(categories=["L"]), min_size=1, max_size=40)
SEEDS = st.integers(0, 2**31 - 1)
# The independent fields, built once: building strategies inside a draw costs more than drawing from them.
TASK_FIELDS = st.fixed_dictionaries(
    {
        "pair": st.sampled_from(PAIRS),
        "width": st.integers(1, 4096),
        "depth": st.integers(1, 8),
        "data_seed": SEEDS,
        "val_fraction": st.floats(0.01, 0.9),
        "batch_size": st.integers(1, 65536),
        "steps": st.integers(1, 100_000),
        "metric": st.sampled_from(["val_loss", "val_accuracy", "train_loss"]),
        "seed": SEEDS,
        "precision": st.sampled_from(["fp32", "bf16"]),
    }
)
UNIT = st.floats(0, 1)
SEARCH_FIELDS = st.fixed_dictionaries(
    {
        "n_trials": st.integers(1, 100_000),
        "families": st.none() | st.lists(FAMILY_NAMES, min_size=1, max_size=5),
        "schedules": st.none() | st.lists(SCHEDULE_NAMES, min_size=1, max_size=3),
        "sampler": st.sampled_from(["tpe", "gp", "cmaes", "qmc", "random"]),
        "early_stopping": st.sampled_from(["asha", "wsd_branch", "none"]),
        "grace_fraction": st.floats(0.01, 1.0),
        "top_k": st.integers(0, 100),
        "resources": st.fixed_dictionaries({"cpu": st.floats(0.1, 64), "gpu": st.floats(0, 8)}),
        "initial_configs": st.lists(trial_configs(), max_size=2),
        "proxy": st.none() | st.sampled_from([{"width": 32}, {"width_ratio": 0.25, "top_k": 2, "seeds": 1}]),
        "mup": st.booleans(),
    }
)
# Every ``fixed``/``ranges`` key with its HParam: ``lr`` (every family that has it), ``adamw.lr`` (one
# family) and ``cosine.warmup_fraction`` (one schedule).
SPACE_ENTRIES = st.sampled_from(
    [(f"{f.name}.{hp.name}", hp) for f in FAMILIES.values() for hp in f.hparams]
    + [(hp.name, hp) for f in FAMILIES.values() for hp in f.hparams]
    + [(f"{s.name}.{hp.name}", hp) for s in SCHEDULES.values() for hp in s.params]
)
RANGE_ENDS = st.tuples(st.floats(-BIG, BIG, allow_nan=False), st.floats(-BIG, BIG, allow_nan=False)).filter(
    lambda ends: ends[0] != ends[1]
)


@st.composite
def tasks(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(TASK_FIELDS)
    model, data = f["pair"]
    return {
        "model": {"name": model, "width": f["width"], "depth": f["depth"]},
        "data": {"name": data, "seed": f["data_seed"], "val_fraction": f["val_fraction"]},
        "batch_size": f["batch_size"],
        "steps": f["steps"],
        "eval_every": max(1, round(draw(UNIT) * f["steps"])),
        "metric": f["metric"],
        "seed": f["seed"],
        "precision": f["precision"],
    }


@st.composite
def searches(draw: st.DrawFn) -> dict[str, Any]:
    search = draw(SEARCH_FIELDS)
    search["fixed"] = {key: draw(valid_value(hp)) for key, hp in draw(st.lists(SPACE_ENTRIES, max_size=3))}
    search["ranges"] = {key: sorted(draw(RANGE_ENDS)) for key, _ in draw(st.lists(SPACE_ENTRIES, max_size=2))}
    return search


@st.composite
def study_dicts(draw: st.DrawFn) -> dict[str, Any]:
    return {"name": draw(NAMES.filter(str.strip)), "task": draw(tasks()), "search": draw(searches())}


@given(study_dicts())
@PROPERTY
def test_every_valid_spec_round_trips_through_json(raw: dict[str, Any]) -> None:
    spec = load_spec(StudySpec, raw)
    assert StudySpec.model_validate_json(spec.model_dump_json()) == spec
    assert load_spec(StudySpec, spec.model_dump_json()) == spec  # the SDK's and CLI's path: JSON text


@given(study_dicts())
@PROPERTY
def test_every_valid_spec_round_trips_through_yaml(raw: dict[str, Any]) -> None:
    spec = load_spec(StudySpec, raw)
    text = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    assert load_spec(StudySpec, text) == spec


@given(trial_configs())
@PROPERTY
def test_every_catalog_configuration_round_trips(raw: dict[str, Any]) -> None:
    config = load_spec(TrialConfig, raw)
    assert config.family == raw["family"] and set(config.hparams) == set(raw["hparams"])
    assert TrialConfig.model_validate_json(config.model_dump_json()) == config


# --- one mutation at a time -----------------------------------------------------------------------------

# The models along StudySpec's fixed paths (dict and list fields hold arbitrary keys or items, so they are
# left out of the model walk).
MODELS_AT: dict[Path, type[BaseModel]] = {
    (): StudySpec,
    ("task",): TaskSpec,
    ("task", "model"): ModelSpec,
    ("task", "data"): DataSpec,
    ("search",): SearchSpec,
    ("search", "resources"): TrialResources,
}


def _is_scalar(annotation: Any) -> bool:
    """Whether a field holds one number, flag or string (optionally None), not a model, list or dict."""
    union = get_origin(annotation) in (Union, UnionType)
    args = [a for a in get_args(annotation) if a is not type(None)] if union else [annotation]
    return all(a in (int, float, bool, str) or get_origin(a) is Literal for a in args)


SCALAR_FIELDS: list[Path] = [
    (*path, name)
    for path, model in MODELS_AT.items()
    for name, field in model.model_fields.items()
    if _is_scalar(field.annotation)
]


def _bounds(path: Path) -> tuple[Any, Any, bool]:
    """``(lower constraint, upper constraint, is_int)`` of the numeric field at ``path``."""
    field = MODELS_AT[path[:-1]].model_fields[str(path[-1])]
    lower = next((m for m in field.metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt))), None)
    upper = next((m for m in field.metadata if isinstance(m, (annotated_types.Le, annotated_types.Lt))), None)
    is_int = int in (get_args(field.annotation) or (field.annotation,))
    return lower, upper, is_int


BOUNDED_FIELDS = [p for p in SCALAR_FIELDS if _bounds(p)[0] is not None or _bounds(p)[1] is not None]


@st.composite
def out_of_bounds(draw: st.DrawFn, path: Path) -> Any:
    """A number just past one of the field's declared bounds (or far past it)."""
    lower, upper, is_int = _bounds(path)
    sides = [s for s in (lower, upper) if s is not None]
    side = draw(st.sampled_from(sides))
    if isinstance(side, (annotated_types.Ge, annotated_types.Gt)):
        edge = side.ge if isinstance(side, annotated_types.Ge) else side.gt
        exclusive = isinstance(side, annotated_types.Ge)
        return (
            draw(st.integers(edge - 10**9, edge - exclusive))
            if is_int
            else draw(st.floats(edge - BIG, edge, exclude_max=exclusive, allow_nan=False))
        )
    edge = side.le if isinstance(side, annotated_types.Le) else side.lt
    exclusive = isinstance(side, annotated_types.Le)
    return (
        draw(st.integers(edge + exclusive, edge + 10**9))
        if is_int
        else draw(st.floats(edge, edge + BIG, exclude_min=exclusive, allow_nan=False))
    )


def _at(raw: dict[str, Any], path: Path) -> Any:
    node: Any = raw
    for part in path:
        node = node[part]
    return node


def _set(raw: dict[str, Any], path: Path, value: Any) -> None:
    _at(raw, path[:-1])[path[-1]] = value


def rejected_at(raw: dict[str, Any]) -> list[tuple[Path, str]]:
    """The ``(field path, message)`` pairs load_spec refuses ``raw`` with (fails if it is accepted)."""
    try:
        load_spec(StudySpec, raw)
    except SpecError as exc:
        assert all(msg for _, msg in exc.errors), exc.errors
        return [(tuple(int(p) if p.isdigit() else p for p in loc.split(".")), msg) for loc, msg in exc.errors]
    raise AssertionError(f"accepted: {raw}")


def names(errors: list[tuple[Path, str]], path: Path) -> bool:
    """Whether one error is located at ``path`` (or inside it: a union names its branch after the field)."""
    return any(loc[: len(path)] == path for loc, _ in errors)


@given(study_dicts(), st.data())
@PROPERTY
def test_a_value_of_the_wrong_type_is_refused_at_its_field(raw: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(SCALAR_FIELDS), label="field")
    _set(raw, path, data.draw(st.sampled_from([[1, 2], {"a": 1}]), label="wrong type"))
    errors = rejected_at(raw)
    assert names(errors, path), (path, errors)


@given(study_dicts(), st.data())
@PROPERTY
def test_a_number_out_of_its_bounds_is_refused_at_its_field(raw: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(BOUNDED_FIELDS), label="field")
    _set(raw, path, data.draw(out_of_bounds(path), label="value"))
    errors = rejected_at(raw)
    assert names(errors, path), (path, errors)


@given(study_dicts(), st.data())
@PROPERTY
def test_an_unknown_key_is_refused_at_its_own_path(raw: dict[str, Any], data: st.DataObject) -> None:
    models = [p for p in MODELS_AT if isinstance(_at(raw, p), dict)]
    models += [("search", "initial_configs", i) for i in range(len(raw["search"]["initial_configs"]))]
    where = data.draw(st.sampled_from(models), label="model")
    known = set(MODELS_AT.get(where, TrialConfig).model_fields)
    key = data.draw(st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True).filter(lambda k: k not in known))
    _at(raw, where)[key] = 1
    errors = rejected_at(raw)
    assert names(errors, (*where, key)), (where, key, errors)


UNKNOWN_FAMILY = st.text(min_size=1, max_size=30).filter(lambda n: n not in FAMILIES)


@given(study_dicts(), UNKNOWN_FAMILY)
@PROPERTY
def test_an_unknown_family_is_refused_naming_it_and_the_known_ones(raw: dict[str, Any], family: str) -> None:
    raw["search"]["families"] = [*(raw["search"]["families"] or []), family]
    errors = rejected_at(raw)
    [msg] = [m for loc, m in errors if loc == ("search", "families")]
    assert repr(family) in msg and "adamw" in msg


@given(study_dicts(), UNKNOWN_FAMILY, st.data())
@PROPERTY
def test_an_unknown_family_in_a_configuration_is_refused_at_that_configuration(
    raw: dict[str, Any], family: str, data: st.DataObject
) -> None:
    configs = raw["search"]["initial_configs"] = [*raw["search"]["initial_configs"], data.draw(trial_configs())]
    index = data.draw(st.integers(0, len(configs) - 1), label="index")
    configs[index]["family"] = family
    assert names(rejected_at(raw), ("search", "initial_configs", index, "family"))


def _invalid_values(hp: HParam) -> st.SearchStrategy[Any]:
    """Values outside ``hp``'s valid interval or choices (nothing for a hyperparameter that takes any number)."""
    if hp.kind == "bool":
        return st.sampled_from(["yes", 1.5])
    if hp.kind == "choice":
        return st.sampled_from(["not-a-choice", -12345.5]).filter(lambda v: v not in (hp.choices or ()))
    lo, hi = hp.valid
    options = []
    if not math.isinf(lo):
        options.append(st.floats(lo - BIG, lo, exclude_max=not hp.valid_open[0], allow_nan=False))
    if not math.isinf(hi):
        options.append(st.floats(hi, hi + BIG, exclude_min=not hp.valid_open[1], allow_nan=False))
    if hp.kind == "int":
        options.append(st.floats(0.25, 0.75).map(lambda f: math.floor(max(lo, 0)) + f))  # not a whole number
    return st.one_of(options) if options else st.nothing()


BOUNDED_HPARAMS = [
    (family.name, hp)
    for family in FAMILIES.values()
    for hp in family.hparams
    if hp.kind in ("bool", "choice") or not (math.isinf(hp.valid[0]) and math.isinf(hp.valid[1]))
]


@given(study_dicts(), st.sampled_from(BOUNDED_HPARAMS), st.data())
@PROPERTY
def test_a_hyperparameter_outside_its_valid_values_is_refused_naming_it(
    raw: dict[str, Any], entry: tuple[str, HParam], data: st.DataObject
) -> None:
    family, hp = entry
    value = data.draw(_invalid_values(hp), label="value")
    raw["search"]["initial_configs"] = [{"family": family, "hparams": {hp.name: value}}]
    errors = rejected_at(raw)
    [msg] = [m for loc, m in errors if loc == ("search", "initial_configs", 0, "hparams")]
    allowed = (hp.describe_valid(), "whole number", "true or false", "must be one of")
    assert hp.name in msg and any(a in msg for a in allowed), msg
