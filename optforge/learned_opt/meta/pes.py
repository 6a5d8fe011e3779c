"""Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein 2021) with antithetic pairs.

A *particle* is one inner episode run twice, with θ + ε and θ − ε, truncation after truncation. Each
truncation draws a fresh ε ~ N(0, σ²I) and adds it to ξ, the sum of the perturbations this episode has
seen so far; the pair's gradient estimate is

    ĝ = (L⁺ − L⁻) / (2σ²) · ξ

where L± are the two halves' meta-losses on this truncation. Because ξ carries the perturbations of the
earlier truncations (which shaped the state this truncation starts from), the estimate is unbiased for
the gradient of the whole episode's loss, unlike plain truncated ES. ξ resets when the episode ends.

This module is problem-agnostic: ``init`` and ``run`` say what an episode is. Meta-training plugs in
inner MLP tasks (:mod:`.unroll`); the tests plug in a toy quadratic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

T = TypeVar("T")  # the episode's task description
S = TypeVar("S")  # the inner state between truncations

InitFn = Callable[[T], S]
# run(theta, task, state, steps) -> (new state, meta-loss of these steps, finished early?)
RunFn = Callable[[torch.Tensor, T, S, int], tuple[S, float, bool]]


@dataclass
class Particle(Generic[T, S]):
    """One antithetic pair's episode: its task, both halves' states, ξ and the steps done."""

    task: T
    horizon: int
    plus: S | None = None
    minus: S | None = None
    xi: torch.Tensor | None = None
    done: int = 0

    @property
    def finished(self) -> bool:
        return self.done >= self.horizon


@dataclass
class PairResult:
    """One truncation of one particle: the gradient estimate and what it was computed from."""

    grad: torch.Tensor
    loss_plus: float
    loss_minus: float
    steps: int
    episode_over: bool
    cpu_seconds: float


def perturbation(dim: int, sigma: float, seed: int) -> torch.Tensor:
    """ε ~ N(0, σ²I) of size ``dim``, reproducible from ``seed``."""
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed)) * sigma


def pes_step(
    theta: torch.Tensor,
    particle: Particle[T, S],
    *,
    sigma: float,
    truncation: int,
    seed: int,
    init: InitFn[T, S],
    run: RunFn[T, S],
) -> tuple[Particle[T, S], PairResult]:
    """Advance ``particle`` by one truncation (starting its episode if new) and estimate the gradient."""
    started = time.process_time()
    if particle.plus is None or particle.minus is None:
        state = init(particle.task)
        particle.plus, particle.minus = state, state  # both halves start from the same point
        particle.xi = torch.zeros_like(theta)
        particle.done = 0
    eps = perturbation(theta.numel(), sigma, seed).to(theta)
    xi = (particle.xi if particle.xi is not None else torch.zeros_like(theta)) + eps
    steps = min(truncation, particle.horizon - particle.done)
    plus, loss_plus, stop_plus = run(theta + eps, particle.task, particle.plus, steps)
    minus, loss_minus, stop_minus = run(theta - eps, particle.task, particle.minus, steps)
    grad = xi * ((loss_plus - loss_minus) / (2.0 * sigma**2))
    particle.plus, particle.minus, particle.xi = plus, minus, xi
    particle.done += steps
    over = particle.finished or stop_plus or stop_minus
    return particle, PairResult(
        grad=grad,
        loss_plus=loss_plus,
        loss_minus=loss_minus,
        steps=steps,
        episode_over=over,
        cpu_seconds=time.process_time() - started,
    )


def combine(results: list[PairResult]) -> torch.Tensor:
    """The outer gradient: the mean of the pairs' estimates."""
    return torch.stack([r.grad for r in results]).mean(0)


def particle_to_dict(
    particle: Particle[Any, Any], encode_task: Callable[[Any], Any], encode_state: Callable[[Any], Any]
) -> dict[str, Any]:
    """A checkpoint-ready (``torch.save``, ``weights_only``) form of ``particle``."""
    return {
        "task": encode_task(particle.task),
        "horizon": particle.horizon,
        "plus": None if particle.plus is None else encode_state(particle.plus),
        "minus": None if particle.minus is None else encode_state(particle.minus),
        "xi": particle.xi,
        "done": particle.done,
    }


def particle_from_dict(
    data: dict[str, Any], decode_task: Callable[[Any], Any], decode_state: Callable[[Any], Any]
) -> Particle[Any, Any]:
    return Particle(
        task=decode_task(data["task"]),
        horizon=int(data["horizon"]),
        plus=None if data["plus"] is None else decode_state(data["plus"]),
        minus=None if data["minus"] is None else decode_state(data["minus"]),
        xi=data["xi"],
        done=int(data["done"]),
    )
