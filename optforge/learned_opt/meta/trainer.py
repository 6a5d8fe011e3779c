"""The outer loop of meta-training: PES gradient estimates → AdamW on θ, with checkpoints and callbacks.

Each outer step sends every particle (one antithetic pair on its own inner task) with θ to the executor,
averages the pairs' gradient estimates, clips the average to global norm ``clip_norm`` and takes one
AdamW step, its LR warming up linearly then following a cosine down to ``min_lr``. Particles whose
episode ended get a new task (and ξ = 0) at the next step. Every ``eval.every`` steps the unperturbed θ
trains a fixed set of evaluation tasks for their whole horizon: that meta-loss is the comparable curve.

Everything random is drawn from seeds derived from ``(spec.seed, step, particle)``, so a resumed run
continues exactly as the uninterrupted one would have. Callbacks receive every
:class:`~optforge.spec.MetaLossPoint` and every checkpoint's weights: the CLI writes a JSONL log and a
plot, the service writes to storage.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from optforge.learned_opt.meta.pes import Particle, combine, particle_from_dict, particle_to_dict
from optforge.learned_opt.meta.spec import MetaTrainSpec
from optforge.learned_opt.meta.tasks import InnerTask, sample_task
from optforge.learned_opt.meta.unroll import InnerState
from optforge.learned_opt.meta.workers import Executor, eval_work, make_executor, pair_work
from optforge.learned_opt.network import UpdateNetwork
from optforge.learned_opt.weights import LearnedWeights
from optforge.spec import MetaLossPoint

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
# Fields that may change between a run and its resumption: where it runs, not what it computes.
RESUMABLE_CHANGES = frozenset({"workers", "ray_address", "output_dir"})


class MetaCallback(Protocol):
    """Receives meta-training progress. The service's writes to storage; the CLI's writes files."""

    def on_point(self, point: MetaLossPoint) -> None: ...

    def on_checkpoint(self, step: int, weights: LearnedWeights, metrics: dict[str, float]) -> None: ...

    def on_resume(self, step: int) -> None:
        """The run resumes after ``step``: forget anything recorded for later steps."""


@dataclass
class MetaTrainResult:
    """The end of a run: the final weights (also in ``output_dir/weights.pt``) and what it cost."""

    weights: LearnedWeights
    weights_path: Path
    steps: int
    wall_seconds: float
    cpu_seconds: float
    points: list[MetaLossPoint] = field(default_factory=list)

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600.0


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def lr_factor(step: int, spec: MetaTrainSpec) -> float:
    """The outer LR at ``step`` as a fraction of its peak: linear warmup, then cosine down to ``min_lr``."""
    outer = spec.outer
    if step < outer.warmup_steps:
        return (step + 1) / outer.warmup_steps
    span = max(outer.steps - outer.warmup_steps, 1)
    progress = min((step - outer.warmup_steps) / span, 1.0)
    floor = outer.min_lr / outer.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def initial_theta(spec: MetaTrainSpec) -> torch.Tensor:
    """θ at step 0: the paper's random init, or the Adam-like start (:meth:`UpdateNetwork.init_adam_like`)."""
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        network = UpdateNetwork()
        if spec.init == "adam_like":
            network.init_adam_like(gain=spec.gain)
    return network.to_vector()


def eval_tasks(spec: MetaTrainSpec) -> list[InnerTask]:
    """The fixed evaluation tasks (the same for every evaluation of a run)."""
    rng = np.random.default_rng(_seed(spec.seed, 2**20))
    mup = spec.parametrization == "mup"
    return [sample_task(spec.tasks, rng, mup=mup, horizon=spec.eval_horizon) for _ in range(spec.eval.n_tasks)]


class MetaTrainer:
    """Runs ``spec`` (optionally resuming from ``output_dir/checkpoint.pt``); see the module docstring."""

    def __init__(
        self,
        spec: MetaTrainSpec,
        *,
        callbacks: Sequence[MetaCallback] = (),
        executor: Executor | None = None,
    ) -> None:
        self.spec = spec
        self.callbacks = list(callbacks)
        self.output_dir = Path(spec.output_dir)
        self._executor = executor
        self.theta = initial_theta(spec)
        self._param = torch.nn.Parameter(self.theta.clone())
        self.optimizer = torch.optim.AdamW([self._param], lr=spec.outer.lr, weight_decay=spec.outer.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, spec))
        self.particles: list[Particle[InnerTask, InnerState] | None] = [None] * spec.outer.n_tasks
        self.step = 0
        self.wall_seconds = 0.0
        self.cpu_seconds = 0.0
        self.points: list[MetaLossPoint] = []
        self._eval_tasks = eval_tasks(spec)

    # --- checkpoints -------------------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / CHECKPOINT

    def save_checkpoint(self) -> Path:
        """Write everything needed to continue to ``output_dir/checkpoint.pt`` (atomically)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "spec": self.spec.model_dump(mode="json"),
            "step": self.step,
            "theta": self.theta,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "particles": [
                None if p is None else particle_to_dict(p, InnerTask.to_dict, InnerState.to_dict)
                for p in self.particles
            ],
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_seconds,
            "points": [p.model_dump(mode="json") for p in self.points],
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.checkpoint_path)
        return self.checkpoint_path

    def load_checkpoint(self) -> None:
        """Continue from ``output_dir/checkpoint.pt``; ValueError naming the fields when the spec changed."""
        if not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume at {self.checkpoint_path}; run without --resume first")
        payload = torch.load(self.checkpoint_path, weights_only=True)
        saved, now = payload["spec"], self.spec.model_dump(mode="json")
        # A run may be extended: outer.steps may grow (the cosine then stretches over the new total).
        saved["outer"] = {**saved["outer"], "steps": now["outer"]["steps"]}
        changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
        if changed:
            raise ValueError(
                f"the checkpoint in {self.output_dir} was written by a different spec (changed: {', '.join(changed)}); "
                "resume with the same spec or use a new output_dir"
            )
        self.step = int(payload["step"])
        if self.step > self.spec.outer.steps:
            raise ValueError(f"the checkpoint is at outer step {self.step}, past outer.steps {self.spec.outer.steps}")
        self.theta = payload["theta"]
        with torch.no_grad():
            self._param.copy_(self.theta)
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.particles = [
            None if p is None else particle_from_dict(p, InnerTask.from_dict, InnerState.from_dict)
            for p in payload["particles"]
        ]
        self.wall_seconds = float(payload["wall_seconds"])
        self.cpu_seconds = float(payload["cpu_seconds"])
        self.points = [MetaLossPoint.model_validate(p) for p in payload["points"]]
        for callback in self.callbacks:
            on_resume = getattr(callback, "on_resume", None)
            if on_resume is not None:
                on_resume(self.step)

    def weights(self, **info: Any) -> LearnedWeights:
        """The current θ as a weights file's content, with the run's facts in ``info``."""
        facts = {
            "outer_steps": self.step,
            "wall_seconds": round(self.wall_seconds, 1),
            "cpu_hours": round(self.cpu_seconds / 3600.0, 4),
            "spec": self.spec.model_dump(mode="json"),
            **info,
        }
        return LearnedWeights.from_network(
            UpdateNetwork.from_vector(self.theta),
            self.spec.parametrization,
            base_width=self.spec.tasks.base_width,
            name=self.spec.name,
            info=facts,
        )

    # --- the loop ----------------------------------------------------------------------------------------

    def evaluate(self, executor: Executor) -> dict[str, float]:
        """Mean meta-loss and final training loss of the unperturbed θ over the evaluation tasks."""
        cap = self.spec.outer.meta_loss_cap
        results = executor.map(eval_work, [(self.theta, task, cap) for task in self._eval_tasks])
        if getattr(executor, "remote", False):  # in-process work is already in this process's CPU time
            self.cpu_seconds += sum(r["cpu_seconds"] for r in results)
        return {
            "eval_meta_loss": float(np.mean([r["meta_loss"] for r in results])),
            "eval_final_loss": float(np.mean([r["final_loss"] for r in results])),
        }

    def _particle(self, index: int) -> Particle[InnerTask, InnerState]:
        particle = self.particles[index]
        if particle is None:
            rng = np.random.default_rng(_seed(self.spec.seed, self.step, index, 1))
            task = sample_task(self.spec.tasks, rng, mup=self.spec.parametrization == "mup")
            particle = Particle(task=task, horizon=task.horizon)
        return particle

    def outer_step(self, executor: Executor) -> dict[str, float]:
        """One PES estimate over all particles and one AdamW step on θ; the step's metrics."""
        spec = self.spec.outer
        calls = [
            (
                self.theta,
                self._particle(i),
                spec.sigma,
                spec.truncation,
                _seed(self.spec.seed, self.step, i, 0),
                spec.meta_loss_cap,
            )
            for i in range(spec.n_tasks)
        ]
        outcomes = executor.map(pair_work, calls)
        results = [result for _, result in outcomes]
        self.particles = [None if result.episode_over else particle for particle, result in outcomes]
        grad = combine(results)
        grad_norm = float(grad.norm())
        if grad_norm > spec.clip_norm:
            grad = grad * (spec.clip_norm / grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self._param.grad = grad.to(self._param)
        self.optimizer.step()
        self.scheduler.step()
        self.theta = self._param.detach().clone()
        if getattr(executor, "remote", False):
            self.cpu_seconds += sum(r.cpu_seconds for r in results)
        self.step += 1
        return {
            "meta_loss": float(np.mean([(r.loss_plus + r.loss_minus) / 2 for r in results])),
            "grad_norm": grad_norm,
            "outer_lr": lr,
            "episodes_ended": float(sum(r.episode_over for r in results)),
            "inner_steps": float(sum(2 * r.steps for r in results)),
        }

    def _emit(self, point: MetaLossPoint) -> None:
        self.points.append(point)
        for callback in self.callbacks:
            callback.on_point(point)

    def _checkpoint(self, metrics: dict[str, float]) -> None:
        self.save_checkpoint()
        weights = self.weights()
        for callback in self.callbacks:
            callback.on_checkpoint(self.step, weights, metrics)

    def run(
        self, *, resume: bool = False, on_step: Callable[[int, int, MetaLossPoint], None] | None = None
    ) -> MetaTrainResult:
        """Meta-train to ``spec.outer.steps`` (from the checkpoint with ``resume``) and write the weights."""
        if resume:
            self.load_checkpoint()
        executor = self._executor or make_executor(self.spec.workers, self.spec.ray_address)
        total = self.spec.outer.steps
        try:
            if self.step == 0 and not self.points:
                started, cpu0 = time.perf_counter(), time.process_time()
                metrics = self.evaluate(executor)
                self._account(started, cpu0)
                self._emit(
                    MetaLossPoint(
                        step=0, meta_loss=metrics["eval_meta_loss"], wall_time=self.wall_seconds, metrics=metrics
                    )
                )
            while self.step < total:
                started, cpu0 = time.perf_counter(), time.process_time()
                metrics = self.outer_step(executor)
                last = self.step == total
                if self.step % self.spec.eval.every == 0 or last:
                    metrics.update(self.evaluate(executor))
                self._account(started, cpu0)
                point = MetaLossPoint(
                    step=self.step, meta_loss=metrics.pop("meta_loss"), wall_time=self.wall_seconds, metrics=metrics
                )
                self._emit(point)
                if self.step % self.spec.checkpoint_every == 0 or last:
                    self._checkpoint(point.metrics)
                if on_step is not None:
                    on_step(self.step, total, point)
        finally:
            if self._executor is None:
                executor.close()
        evals = [p.metrics["eval_meta_loss"] for p in self.points if "eval_meta_loss" in p.metrics]
        weights = self.weights(
            eval_meta_loss_first=evals[0] if evals else None, eval_meta_loss_last=evals[-1] if evals else None
        )
        path = weights.save(self.output_dir / WEIGHTS)
        return MetaTrainResult(
            weights=weights,
            weights_path=path,
            steps=self.step,
            wall_seconds=self.wall_seconds,
            cpu_seconds=self.cpu_seconds,
            points=list(self.points),
        )

    def _account(self, started: float, cpu0: float) -> None:
        self.wall_seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu0
