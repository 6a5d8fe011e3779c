"""Adam and its direct descendants: a first and a second moment per coordinate, element-wise updates.

All of them are ``mup_rule="adaptive"`` (their update is normalized per coordinate, so μP scales hidden
LRs by 1/fan_in). Decay is decoupled (AdamW-style) wherever the library can do it, because coupled L2
interacts with the adaptive denominator and breaks μ-transfer; Adam itself keeps its coupled L2.
"""

from __future__ import annotations

from optforge.catalog._families_common import CAUTIOUS, adam_betas, adam_lr, decoupled_decay, fixed_betas
from optforge.catalog._family import Family
from optforge.catalog._hparam import beta, eps, lr, number, weight_decay

ADAM_FAMILIES: tuple[Family, ...] = (
    Family(
        name="adamw",
        constructor="torch.optim:AdamW",
        hparams=(adam_lr(), *adam_betas(), weight_decay(0.01, 5e-3, 1.0), eps(1e-8)),
        state_per_param="2",
        reference="Loshchilov & Hutter 2019, 'Decoupled Weight Decay Regularization'",
    ),
    Family(
        name="adam",
        constructor="torch.optim:Adam",
        hparams=(
            adam_lr(),
            *adam_betas(),
            # Coupled L2 (added to the gradient) is what makes this Adam and not AdamW; off by default as in
            # the paper, and not searched: AdamW is the family to search decay with.
            number("weight_decay", 0.0, valid=(0, 1), searched=False, doc="L2 penalty (coupled)"),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Kingma & Ba 2015, 'Adam: A Method for Stochastic Optimization'",
    ),
    Family(
        name="nadam",
        constructor="torch.optim:NAdam",
        # Decoupled decay makes this NAdamW, the AlgoPerf baseline.
        fixed={"decoupled_weight_decay": True},
        hparams=(
            adam_lr(2e-3),  # Dozat 2016 recommends 2e-3 (torch's default too)
            *adam_betas(),
            weight_decay(0.01, 5e-3, 1.0),  # AdamW's default: NAdamW is AdamW with Nesterov momentum
            number("momentum_decay", 4e-3, valid=(0, 1), searched=False, doc="ψ of the μ_t momentum schedule"),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Dozat 2016, 'Incorporating Nesterov Momentum into Adam'",
        notes="AlgoPerf's NAdamW baseline",
    ),
    Family(
        name="radam",
        constructor="torch.optim:RAdam",
        fixed={"decoupled_weight_decay": True},
        hparams=(adam_lr(), *adam_betas(), decoupled_decay(), eps(1e-8)),
        state_per_param="2",
        reference="Liu et al. 2020, 'On the Variance of the Adaptive Learning Rate and Beyond'",
        notes="rectifies Adam's early variance, so it needs less warmup",
    ),
    Family(
        name="adabelief",
        constructor="pytorch_optimizer:AdaBelief",
        fixed={"weight_decouple": True},
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(),
            # AdaBelief's denominator is the variance of g around m, far smaller than E[g²]: its eps is Adam's
            # squared (the paper's 1e-16).
            eps(1e-16),
        ),
        state_per_param="2",
        reference="Zhuang et al. 2020, 'AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients'",
    ),
    Family(
        name="adabound",
        constructor="pytorch_optimizer:AdaBound",
        fixed={"weight_decouple": True},
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(),
            # The per-coordinate step is clipped into bounds that converge to final_lr (an SGD LR); the paper
            # finds 0.1 robust across tasks, hence not searched.
            number(
                "final_lr",
                0.1,
                valid=(0, 100),
                valid_open=(True, False),
                searched=False,
                doc="SGD learning rate the bounds converge to",
            ),
            number(
                "gamma",
                1e-3,
                valid=(0, 1),
                valid_open=(True, True),
                searched=False,
                doc="speed at which the bounds close",
            ),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Luo et al. 2019, 'Adaptive Gradient Methods with Dynamic Bound of Learning Rate'",
    ),
    Family(
        name="adamp",
        constructor="pytorch_optimizer:AdamP",
        fixed={"weight_decouple": True},
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(),
            # Paper defaults: project when |cos(w, g)| < delta / sqrt(dim), and shrink decay by wd_ratio then.
            number("delta", 0.1, valid=(0, 1), searched=False, doc="cosine threshold for scale-invariant weights"),
            number("wd_ratio", 0.1, valid=(0, 1), searched=False, doc="decay multiplier on projected weights"),
            CAUTIOUS,
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Heo et al. 2021, 'AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights'",
    ),
    Family(
        name="adopt",
        constructor="pytorch_optimizer:ADOPT",
        fixed={"weight_decouple": True},
        hparams=(
            adam_lr(),
            # ADOPT decorrelates the second moment from the current gradient, which lets it use β2 = 0.9999
            # (the paper's default) without Adam's divergence.
            beta("beta1", 0.9, 0.9, 0.996),
            beta("beta2", 0.9999, 0.999, 0.9999),
            decoupled_decay(),
            CAUTIOUS,
            eps(1e-6),  # the paper's: the normalization happens before momentum, so eps acts on raw gradients
        ),
        state_per_param="2",
        reference="Taniguchi et al. 2024, 'ADOPT: Modified Adam Can Converge with Any β2 with the Optimal Rate'",
    ),
    Family(
        name="laprop",
        constructor="pytorch_optimizer:LaProp",
        fixed={"weight_decouple": True},
        hparams=(
            # 4e-4 is the reference implementation's default; its updates have Adam's unit scale.
            lr(4e-4, 4e-5, 4e-3),
            *adam_betas(),
            decoupled_decay(),
            CAUTIOUS,
            eps(1e-15),  # the paper's; the normalization is applied before the momentum
        ),
        state_per_param="2",
        reference="Ziyin et al. 2020, 'LaProp: Separating Momentum and Adaptivity in Adam'",
    ),
    Family(
        name="grams",
        constructor="pytorch_optimizer:Grams",
        fixed={"weight_decouple": True},
        hparams=(adam_lr(), *adam_betas(), decoupled_decay(), eps(1e-6)),
        state_per_param="2",
        reference="Cao et al. 2024, 'Grams: Gradient Descent with Adaptive Momentum Scaling'",
        notes="direction from sign(g), magnitude from Adam's |m|/sqrt(v)",
    ),
    Family(
        name="exadam",
        constructor="pytorch_optimizer:EXAdam",
        fixed={"weight_decouple": True},
        hparams=(adam_lr(), *adam_betas(), decoupled_decay(), eps(1e-8)),
        state_per_param="2",
        reference="Adly 2024, 'EXAdam: The Power of Adaptive Cross-Moments'",
    ),
    Family(
        name="fadam",
        constructor="pytorch_optimizer:FAdam",
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(0.1),  # the library's default, the paper's λ
            number(
                "clip",
                1.0,
                valid=(0, 100),
                valid_open=(True, False),
                searched=False,
                doc="RMS clip of the natural-gradient update",
            ),
            number("p", 0.5, valid=(0, 1), searched=False, doc="power of the Fisher in the preconditioner"),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Hwang 2024, 'FAdam: Adam is a natural gradient optimizer using diagonal empirical Fisher'",
    ),
    Family(
        name="diffgrad",
        constructor="pytorch_optimizer:DiffGrad",
        fixed={"weight_decouple": True},
        hparams=(adam_lr(), *adam_betas(), decoupled_decay(), eps(1e-8)),
        state_per_param="3",
        reference="Dubey et al. 2019, 'diffGrad: An Optimization Method for Convolutional Neural Networks'",
    ),
    Family(
        name="ademamix",
        constructor="pytorch_optimizer:AdEMAMix",
        fixed={"weight_decouple": True},
        # The paper warms α and β3 up over the whole run (T_{α,β3} = T): a slow EMA with β3 = 0.9999 is unstable
        # from step 0 otherwise. That horizon is the trial's budget.
        total_steps_arg="t_alpha_beta3",
        hparams=(
            adam_lr(),
            *adam_betas(),
            beta("beta3", 0.9999, 0.999, 0.9999, doc="decay of the slow EMA (the paper uses 0.999-0.9999)"),
            number(
                "alpha",
                5.0,
                4.0,
                10.0,
                scale="linear",
                valid=(0, 100),
                doc="weight of the slow EMA (the paper's 5 to 8)",
            ),
            decoupled_decay(),
            CAUTIOUS,
            eps(1e-8),
        ),
        state_per_param="3",
        reference="Pagliardini et al. 2024, 'The AdEMAMix Optimizer: Better, Faster, Older'",
    ),
    Family(
        name="adan",
        constructor="pytorch_optimizer:Adan",
        # The official implementation's decay is proximal (decoupled); pytorch-optimizer defaults to coupled.
        fixed={"weight_decouple": True},
        hparams=(
            # Adan tolerates a larger LR than Adam (5-10x, per its authors); 3e-3 sits at the low end of that.
            lr(3e-3, 3e-4, 3e-2),
            # β1, β2, β3 = 0.98, 0.92, 0.99 in pytorch-optimizer's convention (1 - the paper's 0.02, 0.08, 0.01),
            # which the paper reports robust across vision and language.
            *fixed_betas(0.98, 0.92, 0.99),
            decoupled_decay(0.02),  # the official default
            eps(1e-8),
        ),
        state_per_param="4",
        reference="Xie et al. 2024, 'Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models'",
    ),
)
