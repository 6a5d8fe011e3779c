"""Learned optimizers: an update rule meta-trained by optforge, shipped with its weights.

μLO's update is normalized per coordinate like Adam's and scaled per tensor by μ(p) = base_width/fan_in on
hidden weights, which is the engine's ``learned`` μP rule (``mup_rule="learned"``). Its ``lr`` stays 1:
the meta-trained weights already set the step size, and ``step_mult`` is the one knob left.
"""

from __future__ import annotations

import math

from optforge.catalog._family import Family
from optforge.catalog._hparam import lr, number

LEARNED_FAMILIES: tuple[Family, ...] = (
    Family(
        name="mulo",
        constructor="optforge.learned_opt:MuLO",
        pack_betas=False,
        # It was meta-trained without decay: decay would be a change of the learned rule, so off unless set.
        fixed={"weight_decay": 0.0},
        mup_rule="learned",
        # Its 11 time features let it learn its own warmup and decay (they need no step budget), so an external
        # schedule would decay it twice: it runs with 'constant' (plus warmup_fraction), as in the paper.
        own_schedule=True,
        hparams=(
            lr(1.0, 0.1, 10.0, doc="multiplies every update (keep 1: the meta-trained step)").model_copy(
                update={"searched": False}
            ),
            # Around the meta-trained step: the learned rule was tuned for 1, so a 10x window is plenty.
            number(
                "step_mult",
                1.0,
                0.3,
                3.0,
                valid=(0, math.inf),
                valid_open=(True, False),
                doc="multiplier of the meta-trained step size",
            ),
        ),
        state_per_param="4 + Adafactor statistics (3 momenta, 1 second moment; 3 full second moments for 1-D tensors)",
        reference=(
            "Thérien et al. 2024, 'μLO: Compute-Efficient Meta-Generalization of Learned Optimizers' "
            "(optforge's own meta-trained weights, optforge.learned_opt)"
        ),
        notes=(
            "meta-trained on μP MLPs of width 32-128 for 50-200 steps on CPU (docs/learned_opt.md); train with "
            "mup: true. The update network costs about 4.7k FLOPs per parameter per step"
        ),
    ),
)
