"""μP, the Maximal Update Parametrization (Yang et al., "Tensor Programs IV/V"), relative to a base width.

The one way to get a μP model is ``build_model(task, data, mup=True)``: it builds the model at its width,
infers which dimensions scale by building it again at the base and a second width,
then applies μP's init and output multiplier (:func:`parametrize`). ``build_optimizer`` then reads the
per-parameter LR multipliers of the family's ``mup_rule`` (:func:`lr_scales`).

The coordinate check lives in :mod:`optforge.engine.mup.coord_check` (it imports the trainer, so it is
not imported here). See docs/mup.md for the rules and their sources.
"""

from optforge.engine.mup._parametrize import ReadoutMultiplier, attention_scale, mup_model, parametrize
from optforge.engine.mup._rules import RULES, Rule, fan_ins, lr_multiplier, lr_scales
from optforge.engine.mup._shapes import (
    MupError,
    MupShapes,
    ParamShape,
    attach_shapes,
    infer_shapes,
    is_mup,
    shapes_of,
)

__all__ = [
    "RULES",
    "MupError",
    "MupShapes",
    "ParamShape",
    "ReadoutMultiplier",
    "Rule",
    "attach_shapes",
    "attention_scale",
    "fan_ins",
    "infer_shapes",
    "is_mup",
    "lr_multiplier",
    "lr_scales",
    "mup_model",
    "parametrize",
    "shapes_of",
]
