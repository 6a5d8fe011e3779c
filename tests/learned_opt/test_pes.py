"""PES on a toy problem whose true meta-gradient autograd can compute: the estimate must point downhill."""

from __future__ import annotations

import torch

from optforge.learned_opt.meta.pes import Particle, combine, pes_step

CURVATURE = torch.tensor([0.5, 1.0, 2.0, 4.0])
TRUNCATION, TRUNCATIONS = 5, 3


def run(theta: torch.Tensor, task: None, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Gradient descent on ½ Σ a x² with per-coordinate step sizes 0.4·sigmoid(θ); meta-loss: mean loss."""
    lr = 0.4 * torch.sigmoid(theta)
    losses = []
    for _ in range(steps):
        x = x - lr * CURVATURE * x
        losses.append(0.5 * (CURVATURE * x * x).sum())
    return x, torch.stack(losses).mean(), False


def episode_loss(theta: torch.Tensor) -> torch.Tensor:
    """The sum of the truncations' meta-losses over one episode: what PES estimates the gradient of."""
    x, total = torch.ones(4), torch.zeros(())
    for _ in range(TRUNCATIONS):
        x, loss, _ = run(theta, None, x, TRUNCATION)
        total = total + loss
    return total


def pes_episode_gradient(theta: torch.Tensor, seed: int) -> torch.Tensor:
    """One antithetic particle through a whole episode: the sum of its per-truncation estimates."""
    particle: Particle[None, torch.Tensor] = Particle(task=None, horizon=TRUNCATION * TRUNCATIONS)
    grads = []
    for k in range(TRUNCATIONS):
        particle, result = pes_step(
            theta,
            particle,
            sigma=0.01,
            truncation=TRUNCATION,
            seed=seed * 100 + k,
            init=lambda _task: torch.ones(4),
            run=lambda th, task, x, n: (lambda out: (out[0], float(out[1]), out[2]))(run(th, task, x, n)),
        )
        grads.append(result)
    assert result.episode_over and particle.done == TRUNCATION * TRUNCATIONS
    return combine(grads) * TRUNCATIONS  # combine() averages; the episode gradient is the sum


def test_pes_estimate_matches_the_true_gradient_of_the_episode_loss() -> None:
    theta = torch.tensor([-1.0, 0.5, 0.0, 1.5])
    exact = torch.func.grad(episode_loss)(theta)
    estimate = torch.stack([pes_episode_gradient(theta, seed) for seed in range(400)]).mean(0)
    cosine = torch.nn.functional.cosine_similarity(estimate, exact, dim=0)
    # Truncated ES (no ξ) reaches about 0.94 here: the state carries earlier perturbations PES must credit.
    assert cosine > 0.98, f"PES {estimate.tolist()} vs exact {exact.tolist()} (cosine {cosine:.3f})"
    # And it points downhill: a small step against it lowers the episode's loss.
    assert episode_loss(theta - 0.05 * estimate / estimate.norm()) < episode_loss(theta)


def test_xi_accumulates_the_episodes_perturbations_and_resets_with_a_new_episode() -> None:
    theta = torch.zeros(4)
    particle: Particle[None, torch.Tensor] = Particle(task=None, horizon=10)
    kwargs = {
        "sigma": 0.1,
        "truncation": 5,
        "init": lambda _task: torch.ones(4),
        "run": lambda th, task, x, n: (lambda out: (out[0], float(out[1]), out[2]))(run(th, task, x, n)),
    }
    particle, _ = pes_step(theta, particle, seed=1, **kwargs)
    first = particle.xi.clone()
    particle, result = pes_step(theta, particle, seed=2, **kwargs)
    assert result.episode_over
    assert not torch.allclose(particle.xi, first) and particle.xi.norm() > first.norm() * 0.5
    fresh, _ = pes_step(theta, Particle(task=None, horizon=10), seed=1, **kwargs)
    torch.testing.assert_close(fresh.xi, first)  # a new episode starts from ξ = ε alone
