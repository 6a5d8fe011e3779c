"""Every learning-rate schedule optforge offers. Adding one means adding one entry here and its factor
function in ``optforge.engine.schedules``."""

from __future__ import annotations

from optforge.catalog._hparam import choice, number
from optforge.catalog._schedule import Schedule

# Warmup is searched up to 20% of the budget: beyond that it mostly wastes steps (Kosson et al. 2024
# find 5-10% suffices for Adam at these scales), below 1% Adam's early second-moment noise can blow up.
WARMUP = number(
    "warmup_fraction",
    0.05,
    0.0,
    0.2,
    scale="linear",
    valid=(0, 1),
    valid_open=(False, True),
    doc="fraction of the budget spent ramping linearly from 0 to the peak LR",
)
# Decaying to zero is the default: linear/cosine decay to 0 matches or beats a non-zero floor
# (Defazio et al. 2023, "When, Why and How Much?").
MIN_LR = number("min_lr_ratio", 0.0, valid=(0, 1), searched=False, doc="final LR as a fraction of the peak")

SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule(
            name="constant",
            params=(WARMUP,),
            implementation="torch.optim.lr_scheduler.LambdaLR",
            doc="linear warmup, then the peak LR for the rest of the budget",
        ),
        Schedule(
            name="cosine",
            params=(WARMUP, MIN_LR),
            implementation="torch.optim.lr_scheduler.LambdaLR (cosine)",
            doc="linear warmup, then half a cosine down to min_lr_ratio",
            reference="Loshchilov & Hutter 2017",
        ),
        Schedule(
            name="linear",
            params=(WARMUP, MIN_LR),
            implementation="torch.optim.lr_scheduler.LambdaLR (linear)",
            doc="linear warmup, then linear decay to min_lr_ratio",
            reference="Defazio et al. 2023, 'When, Why and How Much?'",
        ),
        Schedule(
            name="wsd",
            params=(
                WARMUP,
                number(
                    "decay_fraction",
                    0.2,
                    0.1,
                    0.5,
                    scale="linear",
                    valid=(0, 1),
                    valid_open=(True, False),
                    doc="fraction of the budget spent in the final cooldown",
                ),
                # 1-sqrt cooled down better than linear in Hägele et al. 2024 (Fig. 4), hence the default.
                choice("cooldown", "1-sqrt", ("linear", "1-sqrt"), "shape of the cooldown"),
                MIN_LR,
            ),
            implementation="torch.optim.lr_scheduler.LambdaLR (warmup-stable-decay)",
            doc="warmup, a long constant phase, then a short cooldown; the stable phase can be branched",
            reference="Hu et al. 2024 (MiniCPM); Hägele et al. 2024",
        ),
        Schedule(
            name="one_cycle",
            params=(
                number(
                    "warmup_fraction",
                    0.3,
                    0.1,
                    0.5,
                    scale="linear",
                    valid=(0, 1),
                    valid_open=(True, True),
                    doc="fraction of the budget spent rising to the peak (OneCycleLR's pct_start)",
                ),
                number("div_factor", 25.0, valid=(1, 1e6), searched=False, doc="initial LR = peak / div_factor"),
                number(
                    "final_div_factor", 1e4, valid=(1, 1e9), searched=False, doc="final LR = initial / final_div_factor"
                ),
            ),
            implementation="torch.optim.lr_scheduler.LambdaLR (OneCycleLR's cosine formula, relative to each group's LR)",
            doc="rise from peak/div_factor to the peak, then anneal far below it",
            reference="Smith & Topin 2018",
        ),
        Schedule(
            name="sgdr",
            params=(
                WARMUP,
                number(
                    "first_cycle_fraction",
                    0.25,
                    0.05,
                    0.5,
                    scale="linear",
                    valid=(0, 1),
                    valid_open=(True, False),
                    doc="length of the first cosine cycle as a fraction of the budget",
                ),
                choice("cycle_mult", 2, (1, 2), "each cycle is this many times longer than the previous"),
                MIN_LR,
            ),
            implementation="torch.optim.lr_scheduler.LambdaLR (CosineAnnealingWarmRestarts' formula, relative floor)",
            doc="cosine cycles with warm restarts",
            reference="Loshchilov & Hutter 2017 (SGDR)",
        ),
        Schedule(
            name="inverse_sqrt",
            params=(WARMUP,),
            implementation="torch.optim.lr_scheduler.LambdaLR (inverse square root)",
            doc="warmup, then LR x sqrt(warmup_steps / step); needs no total step count",
            reference="Vaswani et al. 2017",
        ),
        Schedule(
            name="polynomial",
            params=(
                WARMUP,
                number(
                    "power",
                    1.0,
                    0.5,
                    3.0,
                    scale="linear",
                    valid=(0, 100),
                    valid_open=(True, False),
                    doc="decay exponent; 1 is linear",
                ),
                MIN_LR,
            ),
            implementation="torch.optim.lr_scheduler.LambdaLR (PolynomialLR's formula with a relative floor)",
            doc="warmup, then (1 - progress)^power down to min_lr_ratio",
        ),
    )
}


def get_schedule(name: str) -> Schedule:
    """The schedule called ``name``; ValueError listing the known ones otherwise."""
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}") from None
