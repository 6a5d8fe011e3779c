"""Momentum methods without a second moment: SGD, sign descent (Lion) and max-normalized steps (Gravity).

One state tensor per parameter. SGD is ``mup_rule="sgd"`` (its update scales with the gradient, so μP
leaves hidden LRs alone); Lion and Gravity normalize their updates per coordinate or per tensor and follow
the adaptive rule.
"""

from __future__ import annotations

from optforge.catalog._families_common import CAUTIOUS
from optforge.catalog._family import Family
from optforge.catalog._hparam import beta, lr, number, weight_decay

MOMENTUM_FAMILIES: tuple[Family, ...] = (
    Family(
        name="sgd",
        constructor="torch.optim:SGD",
        fixed={"nesterov": True},
        pack_betas=False,
        mup_rule="sgd",
        hparams=(
            lr(0.1, 2e-2, 5.0),
            number(
                "momentum",
                0.9,
                0.8,
                0.99,
                scale="log1m",
                valid=(0, 1),
                valid_open=(True, True),
                doc="heavy-ball momentum (Nesterov)",
            ),
            # SGD's decay is coupled (added to the gradient), so it lives orders of magnitude below AdamW's.
            number("weight_decay", 5e-6, 1e-7, 5e-5, doc="L2 penalty (coupled)"),
        ),
        state_per_param="1",
        reference="Sutskever et al. 2013, 'On the importance of initialization and momentum'",
    ),
    Family(
        name="lion",
        constructor="pytorch_optimizer:Lion",
        hparams=(
            # Lion's sign update has unit RMS, so its LR sits 3-10x below AdamW's and its decay 3-10x above.
            lr(1e-4, 1e-5, 1e-3),
            beta("beta1", 0.9, searched=False),
            beta("beta2", 0.99, 0.95, 0.999),
            weight_decay(0.1, 1e-2, 3.0),
            CAUTIOUS,
        ),
        state_per_param="1",
        reference="Chen et al. 2023, 'Symbolic Discovery of Optimization Algorithms'",
        notes="likes large batches",
    ),
    Family(
        name="gravity",
        constructor="pytorch_optimizer:Gravity",
        pack_betas=False,
        hparams=(
            lr(1e-2, 1e-3, 1e-1),  # the library's (the reference implementation's) default
            # The library's defaults: α = 0.01 scales the initial velocity, β = 0.9 averages it.
            number("alpha", 0.01, valid=(0, 1), searched=False, doc="scale of the initial velocity"),
            number("beta", 0.9, 0.8, 0.99, scale="log1m", valid=(0, 1), doc="velocity moving-average decay"),
        ),
        state_per_param="1",
        reference="Bahrami & Zadeh 2021, 'Gravity Optimizer: a Kinematic Approach on Optimization in Deep Learning'",
        notes="takes no weight decay",
    ),
)
