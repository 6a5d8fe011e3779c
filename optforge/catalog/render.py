"""Render the optimizer-family registry as the Markdown page docs/families.md.

Run ``python -m optforge.catalog.render > docs/families.md`` after changing a family; a test fails while
the committed page differs from what this prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from optforge.catalog._family import Family
from optforge.catalog._hparam import HParam, Value, _fmt
from optforge.catalog.families import DEFAULT_SEARCH_FAMILIES, FAMILIES

INTRO = """\
# Optimizer families

This page is generated from the registry (`optforge/catalog/families.py`) by
`python -m optforge.catalog.render > docs/families.md`; edit the registry, not this page.

**Ranges** are where the default search looks; a user may set any value the family accepts, inside or
outside them:

- `log[a, b]`: log-uniform between a and b (learning rates, decays, epsilons).
- `[a, b]`: uniform (linear) between a and b.
- `1-x log[a, b]`: x between a and b, with 1 - x log-uniform, for decays near 1 such as betas, where
  0.9, 0.99 and 0.999 are equally large steps.
- `{a, b}`: one of the listed values. Hyperparameters not listed under ranges are fixed at their default.

**State** is the optimizer memory in multiples of the parameter count (m×n is a weight matrix's shape).
**μP** is the rule μ-transfer uses to scale each layer's LR: `adaptive` (Adam-like), `sgd`, `spectral`
(matrix-normalized updates). Marks after a name: ★ in the default search space; *schedule-free* (runs
with schedule `constant`, evaluated at averaged weights); *own schedule* (runs its own warmup/decay, so the
schedule is pinned to `constant`); *create_graph* (needs
`backward(create_graph=True)`, which the trainer's stepper handles); *needs total_steps* (the trial's
budget is passed to the constructor).

**Adding a family** is one entry in the `optforge/catalog/_families_<kind>.py` module of its kind: a
`Family(name=..., constructor="module:Class", hparams=(...), state_per_param=..., reference=...)` with
each hyperparameter named like the constructor's keyword argument, and each non-obvious default's reason
in a comment. Families that need more than a class call (a composite or a wrapper) point `constructor` at
a builder function in `optforge/engine/optimizers/`. The contract tests then run the new family
automatically (20 steps lower the loss, `state_dict` round-trip, parameter-group routing); regenerate
this page with the command above.

**Not offered: AlphaAdam** (Chang et al. 2025). No library ships it and its update rule could not be
obtained from the paper (only its abstract); instead of a guess under its name, the closest published
mechanism, the `cautious` mask (Liang et al. 2024), is a flag on the families whose library has it.
"""

HEADER = "| family | library and class | defaults | ranges | state / param | μP | reference |"
RULE = "|---|---|---|---|---|---|---|"


def _value(value: Value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isfinite(value):
        return _fmt(value)
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _join(parts: Iterable[str]) -> str:
    return "<br>".join(parts) or "—"


def _marks(family: Family) -> list[str]:
    marks = []
    if family.name in DEFAULT_SEARCH_FAMILIES:
        marks.append("★")
    if family.schedule_free:
        marks.append("*schedule-free*")
    if family.own_schedule:
        marks.append("*own schedule*")
    if family.needs_create_graph:
        marks.append("*create_graph*")
    if family.total_steps_arg:
        marks.append("*needs total_steps*")
    return marks


def _defaults(family: Family) -> str:
    values = [f"{hp.name}={_value(hp.default)}" for hp in family.hparams]
    values += [f"{name}={_value(value)} (fixed)" for name, value in family.fixed.items()]
    return _join(values)


def _ranges(hparams: Iterable[HParam]) -> str:
    return _join(f"{hp.name} {hp.describe_range()}" for hp in hparams if hp.searched)


def row(family: Family) -> str:
    """One table row for ``family``."""
    name = " ".join([f"`{family.name}`", *_marks(family)])
    reference = family.reference + (f" — {family.notes}" if family.notes else "")
    cells = [
        name,
        f"`{family.library}`",
        _defaults(family),
        _ranges(family.hparams),
        family.state_per_param,
        family.mup_rule,
        reference,
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render_markdown() -> str:
    """The whole docs/families.md page."""
    rows = [row(family) for family in FAMILIES.values()]
    return "\n".join([INTRO, HEADER, RULE, *rows]) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
