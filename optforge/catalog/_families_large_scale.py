"""Families built for large models: factored memory, spike-safe moments, projected or layer-wise updates.

Memory-light ones (Adafactor, CAME) factor the second moment of each matrix into row and column
statistics; SPAM and Stable-SPAM guard Adam against gradient spikes; Conda and MARS reshape the update
direction; LAMB and LARS rescale each layer's update by a trust ratio for very large batches.
"""

from __future__ import annotations

from optforge.catalog._families_common import CAUTIOUS, adam_betas, adam_lr, decoupled_decay, fixed_betas
from optforge.catalog._family import Family
from optforge.catalog._hparam import HParam, beta, eps, lr, number


def _interval(name: str, default: int, doc: str) -> HParam:
    return number(name, default, kind="int", valid=(1, 10**9), searched=False, doc=doc)


LARGE_SCALE_FAMILIES: tuple[Family, ...] = (
    Family(
        name="adafactor",
        # torch's Adafactor follows the paper (no momentum, relative step capped by lr, scaled by the
        # parameter's RMS); pytorch-optimizer's AdaFactor ignores lr by default (relative_step=True), which
        # would make the LR hyperparameter a no-op.
        constructor="torch.optim:Adafactor",
        pack_betas=False,
        hparams=(
            # The paper's relative step is min(1e-2, 1/sqrt(t)) times RMS(param): lr is that 1e-2 cap.
            lr(1e-2, 1e-3, 1e-1, doc="cap of the relative step size"),
            number(
                "beta2_decay", -0.8, valid=(-1, 0), searched=False, doc="β2_t = 1 - t^beta2_decay, the paper's -0.8"
            ),
            number(
                "d",
                1.0,
                valid=(0, 100),
                valid_open=(True, False),
                searched=False,
                doc="update clipping threshold (the paper's d = 1)",
            ),
            decoupled_decay(),
        ),
        state_per_param="≈0 (rows + columns per matrix) / 1 (vectors)",
        reference="Shazeer & Stern 2018, 'Adafactor: Adaptive Learning Rates with Sublinear Memory Cost'",
        notes="no cautious variant: torch.optim.Adafactor has none, and the paper's Adafactor keeps no momentum",
    ),
    Family(
        name="came",
        constructor="pytorch_optimizer:CAME",
        fixed={"weight_decouple": True},
        hparams=(
            lr(2e-4, 2e-5, 2e-3),  # the reference implementation's default (RMS-clipped Adafactor-style updates)
            *fixed_betas(0.9, 0.999, 0.9999),  # β3 drives the confidence (instability) EMA
            decoupled_decay(),
            number(
                "clip_threshold",
                1.0,
                valid=(0, 100),
                valid_open=(True, False),
                searched=False,
                doc="RMS clip of the update, as in Adafactor",
            ),
        ),
        state_per_param="1 + rows and columns per matrix (2 for vectors)",
        reference="Luo et al. 2023, 'CAME: Confidence-guided Adaptive Memory Efficient Optimization'",
    ),
    Family(
        name="spam",
        constructor="pytorch_optimizer:SPAM",
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(),
            # The reference implementation's defaults: clip entries whose g² exceeds threshold · v, and reset
            # momentum every 500 steps with a cosine LR re-warmup of warmup_epoch steps.
            number("threshold", 5000, valid=(0, 1e9), searched=False, doc="spike threshold θ on g²/v"),
            _interval("update_proj_gap", 500, "momentum reset interval ΔT"),
            _interval("warmup_epoch", 50, "steps of cosine re-warmup after each reset"),
            eps(1e-6),
        ),
        state_per_param="2",
        reference="Huang et al. 2025, 'SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM Training'",
    ),
    Family(
        name="stable_spam",
        constructor="pytorch_optimizer:StableSPAM",
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(),
            # The reference implementation's γ1 = 0.7, γ2 = 0.9, θ = 0.999 (adaptive spike clip and norm scaling).
            number("gamma1", 0.7, valid=(0, 1), searched=False, doc="EMA decay of the gradient norm"),
            number("gamma2", 0.9, valid=(0, 1), searched=False, doc="EMA decay of the squared gradient norm"),
            number("theta", 0.999, valid=(0, 1), searched=False, doc="EMA decay of the max |g| spike bound"),
            _interval("update_proj_gap", 1000, "momentum reset interval ΔT"),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Huang et al. 2025, 'Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam'",
    ),
    Family(
        name="conda",
        constructor="pytorch_optimizer:Conda",
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(),
            _interval("update_proj_gap", 2000, "steps between recomputing the column-normalizing projection"),
            number(
                "scale",
                1.0,
                valid=(0, 100),
                valid_open=(True, False),
                searched=False,
                doc="scale of the projected update",
            ),
            eps(1e-8),
        ),
        state_per_param="2 + an n×n projection per n-row matrix",
        reference="Wang et al. 2025, 'Conda: Column-Normalized Adam for Training Large Language Models Faster'",
        notes="its state holds GaLoreProjector objects: load checkpoints with torch.load(weights_only=False)",
    ),
    Family(
        name="mars",
        constructor="pytorch_optimizer:MARS",
        # The paper updates 1-D parameters with AdamW (optimize_1d=False). Their decay is set to 0 so vectors
        # stay undecayed as routing promises; their LR is lr_1d and follows the group's LR (μP, schedules).
        fixed={"mars_type": "adamw", "optimize_1d": False, "weight_decay_1d": 0.0, "weight_decouple": True},
        hparams=(
            lr(3e-3, 3e-4, 3e-2),  # the reference implementation's; variance reduction tolerates more than AdamW
            beta("beta1", 0.95, 0.9, 0.99),
            beta("beta2", 0.99, 0.95, 0.999),
            number("gamma", 0.025, 0.005, 0.1, valid=(0, 1), doc="variance-reduction strength (the paper's 0.025)"),
            number(
                "lr_1d",
                3e-3,
                valid=(0, 10),
                valid_open=(True, False),
                searched=False,
                doc="AdamW LR of 1-D parameters (the paper's 3e-3)",
            ),
            decoupled_decay(),
            CAUTIOUS,
            eps(1e-8),
        ),
        state_per_param="3",
        reference="Yuan et al. 2024, 'MARS: Unleashing the Power of Variance Reduction for Training Large Models'",
        notes="1-D parameters use AdamW with lr_1d",
    ),
    Family(
        name="lamb",
        constructor="pytorch_optimizer:Lamb",
        fixed={"weight_decouple": True},
        # Trust-ratio updates have RMS lr·|w|/|u| per layer, which under μP init scales as 1/sqrt(width):
        # neither adaptive nor sgd is exact; adaptive (1/fan_in) errs towards small hidden steps.
        mup_rule="adaptive",
        hparams=(
            adam_lr(),
            *adam_betas(),
            decoupled_decay(0.01),  # the paper's BERT setting
            number("max_grad_norm", 1.0, valid=(0, 1e6), searched=False, doc="global gradient-norm clip (0: off)"),
            eps(1e-6),  # the paper's
        ),
        state_per_param="2",
        reference="You et al. 2020, 'Large Batch Optimization for Deep Learning: Training BERT in 76 minutes'",
    ),
    Family(
        name="lars",
        constructor="pytorch_optimizer:LARS",
        pack_betas=False,
        mup_rule="adaptive",  # trust-ratio update, see lamb
        hparams=(
            # The layer-wise step is lr · trust_coefficient · |w| / |g|: with the paper's η = 1e-3 the global
            # LR sits at SGD-like scales of 0.1-10 (the paper's base LRs for large batches).
            lr(1.0, 0.1, 10.0),
            number(
                "momentum",
                0.9,
                0.8,
                0.99,
                scale="log1m",
                valid=(0, 1),
                valid_open=(False, True),
                doc="heavy-ball momentum",
            ),
            # Coupled L2, inside the trust ratio as in the paper; off by default like the library's.
            number("weight_decay", 0.0, 1e-6, 1e-3, doc="L2 penalty (coupled, inside the trust ratio)"),
            number(
                "trust_coefficient",
                1e-3,
                valid=(0, 1),
                valid_open=(True, False),
                searched=False,
                doc="η: the trust ratio's scale (the paper's 1e-3)",
            ),
        ),
        state_per_param="1",
        reference="You et al. 2017, 'Large Batch Training of Convolutional Networks' (LARS)",
        notes="vectors (biases, norms) skip the trust ratio",
    ),
)
