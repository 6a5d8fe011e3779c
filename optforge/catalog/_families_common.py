"""Hyperparameters many families share, so each range is decided (and justified) once."""

from __future__ import annotations

from optforge.catalog._hparam import HParam, beta, flag, lr, weight_decay


def adam_lr(default: float = 1e-3) -> HParam:
    """Adam-scale LR: 1e-3 is Adam's published default; the range spans the optima across AlgoPerf workloads."""
    return lr(default, 1e-4, 1e-2)


def adam_betas(beta1: float = 0.9, beta2: float = 0.999) -> tuple[HParam, HParam]:
    """β1 searched over 1-β1 in log[4e-3, 0.1] and β2 over 1-β2 in log[1e-3, 0.05] (AlgoPerf NAdamW space)."""
    return beta("beta1", beta1, 0.9, 0.996), beta("beta2", beta2, 0.95, 0.999)


def fixed_betas(*values: float) -> tuple[HParam, ...]:
    """Betas kept at the paper's values: the paper reports them robust, so searching them wastes trials."""
    return tuple(beta(f"beta{i}", v, searched=False) for i, v in enumerate(values, start=1))


def decoupled_decay(default: float = 0.0) -> HParam:
    """AdamW-style decoupled decay; the range is AdamW's (AlgoPerf), the default the library's own."""
    return weight_decay(default, 5e-3, 1.0)


CAUTIOUS = flag(
    "cautious",
    False,
    "cautious variant: zero update coordinates whose sign disagrees with the gradient and rescale the rest "
    "(Liang et al. 2024, 'Cautious Optimizers')",
)
