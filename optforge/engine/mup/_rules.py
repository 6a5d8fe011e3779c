"""μP's per-parameter learning-rate multipliers, by how an optimizer family's update scales with width.

Every multiplier is *relative to the base width*: at the base width they are all 1, so μP there is the
standard parametrization and a configuration tuned in SP at the base width keeps its meaning.
``r_in`` / ``r_out`` are a weight's fan-in / fan-out width multipliers (:class:`ParamShape`).

=========  ======================================  ==========================  ==========================
rule       matrix-like (hidden: both dims scale)   vector-like (one dim)       scalar-like (none scale)
=========  ======================================  ==========================  ==========================
adaptive   1 / r_in                                1                           1
sgd        r_out / r_in                            r (the dim that scales)     1
spectral   sqrt(r_out / r_in)                      1                           1
learned    1 / r_in (μLO's μ(p), as adaptive)      1                           1
=========  ======================================  ==========================  ==========================

Why, and the sources, are in docs/mup.md. In short: an entry-wise normalized update (Adam, Lion, sign)
has entries of size ~lr whatever the fan-in, and summed over ``fan_in`` correlated inputs it moves the
output by ~lr x fan_in, hence 1/r_in ("Tensor Programs V", Table 3 / ``mup.MuAdam``). An SGD update is
the gradient itself, whose size already carries the fan-in factors; vector-like weights then need
``x r`` (Table 3's SGD row / ``mup.MuSGD``). A spectral update (Muon, Shampoo, SOAP) is normalized per
matrix; the spectral condition (Yang, Simon & Bernstein 2023) asks for an update of spectral norm
~sqrt(fan_out / fan_in), hence sqrt(r_out / r_in), which is 1 when both dims grow together. (Coordinate
checks find only Muon's update spectral in the end; AdaMuon, grafted Shampoo and SOAP behave adaptive:
docs/mup.md.)

The readout's 1/width output multiplier (applied by :func:`optforge.engine.mup.parametrize`) is what lets
the readout keep LR multiplier 1 under the adaptive rule.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

from optforge.engine.mup._shapes import MupError, ParamShape, shapes_of

Rule = Literal["adaptive", "sgd", "spectral", "learned"]
RULES: tuple[Rule, ...] = ("adaptive", "sgd", "spectral", "learned")


def lr_multiplier(shape: ParamShape, rule: Rule) -> float:
    """The LR multiplier of one parameter under ``rule`` (see the module table)."""
    if rule not in RULES:
        raise MupError(f"unknown μP rule {rule!r}; expected one of {RULES}")
    if shape.n_inf == 0:
        return 1.0
    if shape.n_inf == 1:
        return shape.width_mult if rule == "sgd" else 1.0
    if shape.n_inf > 2:
        raise MupError(f"a parameter of shape {shape.shape} scales with width in {shape.n_inf} dimensions; μP covers 2")
    if rule == "sgd":
        return shape.fan_out_mult / shape.fan_in_mult
    if rule == "spectral":
        return math.sqrt(shape.fan_out_mult / shape.fan_in_mult)
    return 1.0 / shape.fan_in_mult


def lr_scales(model: nn.Module, rule: Rule) -> dict[str, float]:
    """Every trainable parameter's μP LR multiplier under ``rule``, keyed by qualified name.

    ``model`` must come from ``build_model(task, data, mup=True)`` (MupError otherwise). The result goes
    to ``build_optimizer(model, config, lr_scale=...)``, which also divides each group's weight decay by
    its multiplier so the decay per step, lr x weight_decay, stays the same at every width.
    """
    return {name: lr_multiplier(shape, rule) for name, shape in shapes_of(model).params.items()}


def fan_ins(model: nn.Module) -> dict[str, int]:
    """Every trainable parameter's fan-in (inputs per output unit; 1 for 1-D tensors), keyed by name."""
    return {name: shape.fan_in for name, shape in shapes_of(model).params.items()}
