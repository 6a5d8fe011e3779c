"""Live optimizers built from catalog entries, and the per-family step adapter."""

from optforge.engine.optimizers.build import (
    build_family,
    build_optimizer,
    constructor_kwargs,
    resolve_constructor,
    role_groups,
    unknown_kwargs,
)
from optforge.engine.optimizers.composite import CompositeOptimizer
from optforge.engine.optimizers.stepping import Stepper, evaluation_mode, make_stepper, needs_hessian_now

__all__ = [
    "CompositeOptimizer",
    "Stepper",
    "build_family",
    "build_optimizer",
    "constructor_kwargs",
    "evaluation_mode",
    "make_stepper",
    "needs_hessian_now",
    "resolve_constructor",
    "role_groups",
    "unknown_kwargs",
]
