"""One training step for any family, hiding each family's quirks from the trainer.

Some families need ``backward(create_graph=True)`` (Hessian-vector products: SophiaH, AdaHessian),
some need a closure that re-evaluates the loss, and schedule-free families must be switched between
train and eval mode. The trainer calls :func:`make_stepper` once and :func:`evaluation_mode` around
evaluation, and never looks at the family again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from optforge.catalog import Family

Stepper = Callable[[Callable[[], torch.Tensor]], torch.Tensor]


def make_stepper(optimizer: torch.optim.Optimizer, family: Family) -> Stepper:
    """A function ``step(loss_fn) -> loss`` that runs forward, backward and the optimizer step.

    ``loss_fn`` computes the training loss on the current batch (it may be called more than once for
    families that need a closure). The returned loss is detached.
    """

    def step(loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        if family.needs_closure:

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn()
                loss.backward(create_graph=family.needs_create_graph)
                return loss

            loss = optimizer.step(closure)
            return loss.detach()
        loss = loss_fn()
        loss.backward(create_graph=family.needs_create_graph)
        optimizer.step()
        return loss.detach()

    return step


@contextlib.contextmanager
def evaluation_mode(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Swap schedule-free optimizers to their averaged weights while evaluating; a no-op for others."""
    has_modes = callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))
    if has_modes:
        optimizer.eval()
    try:
        yield
    finally:
        if has_modes:
            optimizer.train()
