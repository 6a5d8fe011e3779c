"""Live optimizers built from catalog entries, and the per-family step adapter."""

from optforge.engine.optimizers.build import build_optimizer, constructor_kwargs, resolve_constructor, role_groups
from optforge.engine.optimizers.composite import CompositeOptimizer
from optforge.engine.optimizers.stepping import Stepper, evaluation_mode, make_stepper

__all__ = [
    "CompositeOptimizer",
    "Stepper",
    "build_optimizer",
    "constructor_kwargs",
    "evaluation_mode",
    "make_stepper",
    "resolve_constructor",
    "role_groups",
]
