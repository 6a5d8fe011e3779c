"""Where the antithetic pairs run: in this process, or spread over Ray workers (tasks, one CPU each).

The work functions are module-level (Ray ships them by reference) and stateless: a particle goes out
with θ and comes back advanced, so a worker can die or the run can stop without losing anything that
the driver's checkpoint does not hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from optforge.learned_opt.meta.pes import PairResult, Particle, pes_step
from optforge.learned_opt.meta.tasks import InnerTask
from optforge.learned_opt.meta.unroll import InnerState, init_inner, run_truncation


def _run(cap: float) -> Callable[[torch.Tensor, InnerTask, InnerState, int], tuple[InnerState, float, bool]]:
    def run(theta: torch.Tensor, task: InnerTask, state: InnerState, steps: int) -> tuple[InnerState, float, bool]:
        new_state, result = run_truncation(theta, task, state, steps, cap=cap)
        return new_state, result.meta_loss, result.diverged

    return run


def pair_work(
    theta: torch.Tensor, particle: Particle[InnerTask, InnerState], sigma: float, truncation: int, seed: int, cap: float
) -> tuple[Particle[InnerTask, InnerState], PairResult]:
    """One PES truncation of one particle on inner MLP tasks (a Ray task or a local call)."""
    torch.set_num_threads(1)  # one CPU per pair: tiny matrices gain nothing from threads, and workers share cores
    return pes_step(theta, particle, sigma=sigma, truncation=truncation, seed=seed, init=init_inner, run=_run(cap))


def eval_work(theta: torch.Tensor, task: InnerTask, cap: float) -> dict[str, float]:
    """Train ``task`` for its whole horizon with θ unperturbed: its meta-loss and final training loss."""
    torch.set_num_threads(1)
    started = time.process_time()
    _, result = run_truncation(theta, task, init_inner(task), task.horizon, cap=cap, keep_losses=True)
    tail = result.losses[-10:]
    return {
        "meta_loss": result.meta_loss,
        "final_loss": sum(tail) / len(tail) if tail and not result.diverged else float("inf"),
        "cpu_seconds": time.process_time() - started,
    }


class Executor(Protocol):
    """Runs ``fn(*call)`` for every call, in parallel where it can, and returns the results in order."""

    remote: bool

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def close(self) -> None: ...


class InProcess:
    """Every call in this process, one after the other (``workers: 0``; tests and debugging)."""

    remote = False  # the work's CPU time is this process's

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        return [fn(*call) for call in calls]

    def close(self) -> None:
        pass


class RayPool:
    """Calls as Ray tasks of one CPU each: on a local Ray with ``workers`` CPUs (started here, and shut down
    by :meth:`close`), or on the cluster at ``address``. An already initialized Ray is used as it is."""

    remote = True  # the work's CPU time is the workers', reported with each result

    def __init__(self, workers: int, address: str | None = None) -> None:
        import ray

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            ray.init(
                address=address,
                num_cpus=workers if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started = True
        self._remotes: dict[Callable[..., Any], Any] = {}

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        remote = self._remotes.get(fn)
        if remote is None:
            remote = self._remotes[fn] = self._ray.remote(num_cpus=1)(fn)
        shared: dict[int, Any] = {}  # θ is the same object in every call: put it in the object store once

        def put(arg: Any) -> Any:
            if isinstance(arg, torch.Tensor):
                if id(arg) not in shared:
                    shared[id(arg)] = self._ray.put(arg)
                return shared[id(arg)]
            return arg

        return self._ray.get([remote.remote(*(put(a) for a in call)) for call in calls])

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(workers: int, address: str | None) -> Executor:
    """In-process for ``workers == 0`` without an address, Ray otherwise."""
    if workers == 0 and address is None:
        return InProcess()
    return RayPool(max(workers, 1), address)
