"""One training step for any family, hiding each family's quirks from the trainer.

Some families need ``backward(create_graph=True)`` (Hessian-vector products: SophiaH, AdaHessian),
some need a closure that re-evaluates the loss, and schedule-free families must be switched between
train and eval mode. The trainer calls :func:`make_stepper` once and :func:`evaluation_mode` around
evaluation, and never looks at the family again.

How pytorch-optimizer's SophiaH gets its Hessian: ``step()`` calls ``compute_hutchinson_hessian``, which
runs ``torch.autograd.grad(p.grad, params, grad_outputs=z)`` on the gradients themselves. That only
works when those gradients were built with ``create_graph=True``; otherwise it raises "element 0 of
tensors does not require grad". It does so on the steps where ``group["step"] % update_period == 0``
(every 10th by default), so the stepper builds the double-backward graph on those steps only, and drops
the gradients right after ``step()``: a gradient that carries its own graph keeps a reference cycle
parameter → grad → graph → parameter alive otherwise (the warning torch prints for create_graph).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch

from optforge.catalog import Family

Stepper = Callable[[Callable[[], torch.Tensor]], torch.Tensor]


def needs_hessian_now(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the coming ``step()`` estimates the Hessian (pytorch-optimizer's Hutchinson families).

    They refresh it when the steps already taken are a multiple of ``optimizer.update_period``; an
    optimizer without ``update_period`` is assumed to need it on every step.
    """
    period = int(getattr(optimizer, "update_period", 1) or 1)
    taken = int(optimizer.param_groups[0].get("step", 0))
    return taken % period == 0


def make_stepper(optimizer: torch.optim.Optimizer, family: Family) -> Stepper:
    """A function ``step(loss_fn) -> loss`` that runs forward, backward and the optimizer step.

    ``loss_fn`` computes the training loss on the current batch (it may be called more than once for
    families that need a closure). The returned loss is detached.
    """

    def backward(loss: torch.Tensor) -> bool:
        create_graph = family.needs_create_graph and needs_hessian_now(optimizer)
        if create_graph:
            with warnings.catch_warnings():
                # We break the parameter↔gradient cycle ourselves, right after step(); see the module doc.
                warnings.filterwarnings("ignore", message=".*create_graph=True.*reference cycle.*")
                loss.backward(create_graph=True)
        else:
            loss.backward()
        return create_graph

    def step(loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        second_order = False
        if family.needs_closure:

            def closure() -> torch.Tensor:
                nonlocal second_order
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn()
                second_order = backward(loss)
                return loss

            loss = optimizer.step(closure)
        else:
            loss = loss_fn()
            second_order = backward(loss)
            optimizer.step()
        if second_order:
            optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


@contextlib.contextmanager
def evaluation_mode(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Swap schedule-free optimizers to their averaged weights while evaluating; a no-op for others.

    Schedule-free families train at the interpolated point y and evaluate at the average x, so their
    parameters change inside this block and are restored on exit. BatchNorm caveat: running statistics
    were collected at y, not x; for models with BatchNorm, refresh them inside this block (a few training
    batches through ``model.train()`` under ``torch.no_grad()``) before evaluating.
    """
    has_modes = callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))
    if has_modes:
        optimizer.eval()
    try:
        yield
    finally:
        if has_modes:
            optimizer.train()
