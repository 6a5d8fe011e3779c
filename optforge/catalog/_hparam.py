"""One tunable hyperparameter: its default, its valid interval and its search range."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

Value = float | int | bool | str
# A bound as it travels in JSON: a number, or "Infinity"/"-Infinity" for an open end (the schema says so,
# so that clients generated from the OpenAPI schema accept what the registry sends).
_BOUND_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["Infinity", "-Infinity"]}]}
Bounds = Annotated[
    tuple[float, float],
    WithJsonSchema({"type": "array", "prefixItems": [_BOUND_SCHEMA, _BOUND_SCHEMA], "minItems": 2, "maxItems": 2}),
]


class HParam(BaseModel):
    """A hyperparameter of an optimizer family or a schedule.

    ``valid`` is what the constructor accepts (checked before any training starts); ``low``/``high``
    is where the search looks by default. They differ on purpose: a user may fix ``lr=0.5`` for AdamW,
    which is valid but outside the range we would search.

    ``scale``:
      - ``log``: sample log-uniformly in [low, high];
      - ``linear``: sample uniformly;
      - ``log1m``: sample ``1 - x`` log-uniformly, for decays near 1 such as Adam's betas, where
        0.9 → 0.99 → 0.999 are equally large steps.
    """

    # JSON has no infinity: unbounded intervals travel as the strings "Infinity"/"-Infinity", which
    # pydantic reads back as floats, so the registry round-trips through the API.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    name: str
    default: Value
    kind: Literal["float", "int", "bool", "choice"] = "float"
    low: float | None = None
    high: float | None = None
    scale: Literal["log", "linear", "log1m"] = "log"
    choices: tuple[Value, ...] | None = None
    valid: Bounds = (-math.inf, math.inf)
    valid_open: tuple[bool, bool] = (False, False)
    searched: bool = Field(True, description="part of the default search space")
    doc: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> HParam:
        if self.kind in ("float", "int") and self.searched and (self.low is None or self.high is None):
            raise ValueError(f"{self.name}: a searched numeric hyperparameter needs low and high")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"{self.name}: a choice hyperparameter needs choices")
        numeric = self.kind in ("float", "int") and self.low is not None and self.high is not None
        if numeric and not self.low <= self.high:  # type: ignore[operator]
            raise ValueError(f"{self.name}: low {self.low} > high {self.high}")
        return self

    def describe_valid(self) -> str:
        """The valid interval in mathematical notation, e.g. ``(0, inf)``."""
        if self.kind == "bool":
            return "true | false"
        if self.kind == "choice":
            return " | ".join(str(c) for c in self.choices or ())
        lo, hi = self.valid
        left = "(" if self.valid_open[0] or math.isinf(lo) else "["
        right = ")" if self.valid_open[1] or math.isinf(hi) else "]"
        return f"{left}{_fmt(lo)}, {_fmt(hi)}{right}"

    def describe_range(self) -> str:
        """The default search range, e.g. ``log[1e-4, 1e-2]``; ``fixed`` when not searched."""
        if not self.searched:
            return "fixed"
        if self.kind == "bool":
            return "{true, false}"
        if self.kind == "choice":
            return "{" + ", ".join(str(c) for c in self.choices or ()) + "}"
        prefix = {"log": "log", "linear": "", "log1m": "1-x log"}[self.scale]
        return f"{prefix}[{_fmt(self.low)}, {_fmt(self.high)}]"

    def check(self, value: object) -> Value:
        """Return ``value`` coerced to this hyperparameter's kind, or raise ValueError saying what is allowed."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError(f"{self.name} must be true or false, got {value!r}")
        if self.kind == "choice":
            if value in (self.choices or ()):
                return value  # type: ignore[return-value]
            raise ValueError(f"{self.name} must be one of {list(self.choices or ())}, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.name} must be a number in {self.describe_valid()}, got {value!r}")
        if self.kind == "int":
            if float(value) != int(value):
                raise ValueError(f"{self.name} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        lo, hi = self.valid
        too_low = value <= lo if self.valid_open[0] else value < lo
        too_high = value >= hi if self.valid_open[1] else value > hi
        if math.isnan(value) or too_low or too_high:
            raise ValueError(f"{self.name}={value!r} is out of range; allowed: {self.describe_valid()}")
        return value


def check_all(values: Mapping[str, object], lookup: Callable[[str], HParam]) -> dict[str, Value]:
    """Check every value against ``lookup(name)``; one ValueError listing all problems, not just the first."""
    checked: dict[str, Value] = {}
    problems: list[str] = []
    for name, value in values.items():
        try:
            checked[name] = lookup(name).check(value)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return checked


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e4):
        return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{x:g}"


# Shorthands for the hyperparameters most families share. Each keeps the validity rule in one place.
def lr(default: float, low: float, high: float, doc: str = "peak learning rate") -> HParam:
    return HParam(
        name="lr", default=default, low=low, high=high, valid=(0, math.inf), valid_open=(True, False), doc=doc
    )


def beta(
    name: str,
    default: float,
    low: float | None = None,
    high: float | None = None,
    *,
    searched: bool = True,
    doc: str = "",
) -> HParam:
    return HParam(
        name=name,
        default=default,
        low=low,
        high=high,
        scale="log1m",
        valid=(0, 1),
        valid_open=(False, True),
        searched=searched and low is not None,
        doc=doc or "decay of a moving average",
    )


def weight_decay(
    default: float, low: float | None = None, high: float | None = None, *, searched: bool = True
) -> HParam:
    return HParam(
        name="weight_decay",
        default=default,
        low=low,
        high=high,
        valid=(0, math.inf),
        searched=searched and low is not None,
        doc="decoupled weight decay",
    )


def eps(default: float) -> HParam:
    return HParam(
        name="eps", default=default, valid=(0, 1), valid_open=(True, False), searched=False, doc="denominator guard"
    )


def flag(name: str, default: bool, doc: str, *, searched: bool = False) -> HParam:
    return HParam(name=name, default=default, kind="bool", searched=searched, doc=doc)


def number(
    name: str,
    default: float,
    low: float | None = None,
    high: float | None = None,
    *,
    scale: Literal["log", "linear", "log1m"] = "log",
    kind: Literal["float", "int"] = "float",
    valid: tuple[float, float] = (0, math.inf),
    valid_open: tuple[bool, bool] = (False, False),
    searched: bool = True,
    doc: str = "",
) -> HParam:
    return HParam(
        name=name,
        default=default,
        low=low,
        high=high,
        scale=scale,
        kind=kind,
        valid=valid,
        valid_open=valid_open,
        searched=searched and low is not None,
        doc=doc,
    )


def choice(name: str, default: Value, choices: tuple[Value, ...], doc: str, *, searched: bool = True) -> HParam:
    return HParam(name=name, default=default, kind="choice", choices=choices, searched=searched, doc=doc)
