"""Families that take tuning off the user: weight averaging, schedule-free iterates, LR-free estimates.

Lookahead and Ranger21 average fast weights into slow ones; schedule-free AdamW/SGD replace the LR decay by
iterate averaging (the trainer switches them to their averaged weights for evaluation, and they run with
schedule ``constant``); Prodigy and D-Adaptation estimate the LR scale themselves, so their ``lr`` is a
multiplier around 1.
"""

from __future__ import annotations

from optforge.catalog._families_common import adam_betas, adam_lr, decoupled_decay, fixed_betas
from optforge.catalog._family import Family
from optforge.catalog._hparam import beta, choice, eps, flag, lr, number

# Lookahead's inner optimizer: families sharing AdamW's LR and decay scale, so one range fits all three.
LOOKAHEAD_INNER = ("adamw", "radam", "nadam")

TUNING_FREE_FAMILIES: tuple[Family, ...] = (
    Family(
        name="lookahead",
        constructor="optforge.engine.optimizers.lookahead:build",
        implementation="pytorch_optimizer.Lookahead",
        pack_betas=False,  # the inner family packs its own betas
        hparams=(
            choice("inner", "adamw", LOOKAHEAD_INNER, "optimizer taking the fast steps"),
            adam_lr(),
            *adam_betas(),
            decoupled_decay(0.01),  # AdamW's default, handed to the inner optimizer
            # The paper's k ∈ {5, 10} and α ∈ {0.5, 0.8}, found robust across tasks.
            choice("k", 5, (5, 10), "fast steps between slow-weight updates"),
            number(
                "alpha", 0.5, 0.5, 0.8, scale="linear", valid=(0, 1), doc="slow-weight step toward the fast weights"
            ),
        ),
        state_per_param="inner + 1 (slow weights)",
        reference="Zhang et al. 2019, 'Lookahead Optimizer: k steps forward, 1 step back'",
        notes="inner optimizer is a choice: " + ", ".join(LOOKAHEAD_INNER),
    ),
    Family(
        name="ranger21",
        constructor="pytorch_optimizer:Ranger21",
        # Ranger21 runs its own warmup and warm-down over num_iterations: the trial's budget.
        total_steps_arg="num_iterations",
        # Stacking a cosine/WSD schedule on top of its own warm-down would decay twice.
        own_schedule=True,
        hparams=(
            adam_lr(),
            *fixed_betas(0.9, 0.999),
            number(
                "beta0",
                0.9,
                valid=(0, 1),
                valid_open=(False, True),
                searched=False,
                doc="positive-negative momentum amplitude",
            ),
            # Its 'stable' decay is divided by the mean second moment, so it sits far below AdamW's: 1e-4 default.
            number("weight_decay", 1e-4, 1e-5, 1e-3, doc="stable (variance-normalized) decoupled weight decay"),
            flag(
                "disable_lr_scheduler",
                False,
                "turn off Ranger21's built-in warmup/warm-down and follow the trial's schedule alone",
            ),
            eps(1e-8),
        ),
        state_per_param="5",
        reference="Wright & Demeure 2021, 'Ranger21: a synergistic deep learning optimizer'",
        notes=(
            "has its own warmup and warm-down: use schedule 'constant' with warmup_fraction 0, or set "
            "disable_lr_scheduler; its warm-down ignores per-group (μP) LR scales"
        ),
    ),
    Family(
        name="schedulefree_adamw",
        # The schedulefree package is the paper authors' reference implementation (and their AlgoPerf entry). It
        # refuses to step in eval mode, which catches a missed train() call that pytorch-optimizer's port
        # (which starts in train mode and never checks) would silently train through.
        constructor="schedulefree:AdamWScheduleFree",
        schedule_free=True,
        hparams=(
            # The package's 2.5e-3; schedule-free wants 1-10x a scheduled AdamW's LR.
            lr(2.5e-3, 2.5e-4, 2.5e-2),
            beta("beta1", 0.9, 0.9, 0.98, doc="interpolation between the averaged and the fast iterate"),
            beta("beta2", 0.999, 0.95, 0.999),
            decoupled_decay(),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Defazio et al. 2024, 'The Road Less Scheduled' (schedulefree.AdamWScheduleFree)",
        notes=(
            "runs with schedule 'constant' (warmup via warmup_fraction); evaluated at the averaged weights. "
            "BatchNorm statistics are collected at the training point: refresh them before evaluating"
        ),
    ),
    Family(
        name="schedulefree_sgd",
        constructor="schedulefree:SGDScheduleFree",
        schedule_free=True,
        pack_betas=False,
        mup_rule="sgd",
        hparams=(
            lr(1.0, 0.1, 10.0),  # the package's default; schedule-free SGD wants 1-10x a scheduled SGD's LR
            number(
                "momentum",
                0.9,
                0.8,
                0.99,
                scale="log1m",
                valid=(0, 1),
                valid_open=(True, True),
                doc="interpolation between the averaged and the fast iterate",
            ),
            number("weight_decay", 0.0, 1e-7, 5e-5, doc="L2 penalty at the interpolated point (coupled, like SGD's)"),
        ),
        state_per_param="1",
        reference="Defazio et al. 2024, 'The Road Less Scheduled' (schedulefree.SGDScheduleFree)",
        notes="runs with schedule 'constant'; BatchNorm statistics need a refresh before evaluation",
    ),
    Family(
        name="prodigy",
        constructor="pytorch_optimizer:Prodigy",
        fixed={"weight_decouple": True},
        hparams=(
            # Prodigy estimates the step size D itself; lr stays 1 and carries the schedule's shape.
            lr(1.0, 0.1, 10.0, doc="multiplier of the estimated step size (keep at 1; tune d_coef)").model_copy(
                update={"searched": False}
            ),
            number(
                "d_coef",
                1.0,
                0.1,
                10.0,
                valid=(0, 1000),
                valid_open=(True, False),
                doc="multiplier of the D estimate (the README's tuning knob)",
            ),
            *fixed_betas(0.9, 0.999),
            decoupled_decay(),
            # The README asks for it whenever the LR schedule has a warmup, as optforge's default schedules do.
            flag("safeguard_warmup", True, "keep the small warmup LRs from inflating the D estimate"),
            eps(1e-8),
        ),
        state_per_param="4",
        reference="Mishchenko & Defazio 2024, 'Prodigy: An Expeditiously Adaptive Parameter-Free Learner'",
        notes="lost to a tuned NAdamW on AlgoPerf",
    ),
    Family(
        name="dadapt_adam",
        constructor="pytorch_optimizer:DAdaptAdam",
        fixed={"weight_decouple": True},
        hparams=(
            lr(1.0, 0.1, 10.0, doc="multiplier of the adapted step size D (1: trust the estimate)"),
            *fixed_betas(0.9, 0.999),
            decoupled_decay(),
            eps(1e-8),
        ),
        state_per_param="3",
        reference="Defazio & Mishchenko 2023, 'Learning-Rate-Free Learning by D-Adaptation'",
    ),
)
