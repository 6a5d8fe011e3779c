"""What optforge's search costs on top of the training itself.

Runs N identical trainings three ways and prints one table:

1. a plain Python loop calling ``optforge.engine.run_trial`` (the floor: training only);
2. plain Ray Tune: a minimal function trainable calling ``run_trial`` and ``tune.report`` at every
   evaluation, Tune's defaults otherwise (result loggers included), ``num_samples=N``;
3. ``optforge.search.run_study`` on a space with one fixed configuration (Optuna, the callback,
   events, the final result report), ASHA off so every trial runs its full budget.

Targets (issue 3): optforge <= 1.1x plain Ray Tune; per-trial overhead <= 5% for 30 s trials.
Trials run one at a time (``--concurrency 1``) so that overhead is not hidden by parallelism.

    python benchmarks/overhead.py                     # 8 trials of 300 steps (about 1 s each)
    python benchmarks/overhead.py --trial-seconds 30  # calibrate the steps so a trial takes ~30 s
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from optforge.spec import StudySpec, TaskSpec, TrialConfig

CONFIG = TrialConfig(family="adamw", hparams={"lr": 3e-3}, schedule="cosine")


def task_for(steps: int) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "model": {"name": "mlp", "width": 64},
            "data": {"name": "digits"},
            "steps": steps,
            "eval_every": max(1, steps // 10),
        }
    )


def calibrate(seconds: float) -> int:
    """Steps for one trial of about ``seconds`` on this machine (one thread, like a 1-CPU trial)."""
    import torch

    from optforge.engine.trainer import run_trial

    torch.set_num_threads(1)
    from optforge.engine.data import load_data

    probe = 500
    data = load_data(task_for(probe).data)
    run_trial(task_for(20), CONFIG, dataset=data)  # imports and first-call costs stay out of the timing
    started = time.perf_counter()
    run_trial(task_for(probe), CONFIG, dataset=data)
    per_step = (time.perf_counter() - started) / probe
    return max(probe, int(seconds / per_step))


def plain_loop(task: TaskSpec, n: int) -> float:
    import torch

    from optforge.engine.data import load_data
    from optforge.engine.trainer import run_trial

    torch.set_num_threads(1)  # what a 1-CPU Ray trial gets
    started = time.perf_counter()
    data = load_data(task.data)
    for _ in range(n):
        run_trial(task, CONFIG, dataset=data)
    return time.perf_counter() - started


def _minimal_trainable(config: dict[str, Any], *, task: TaskSpec, dataset: Any) -> None:
    import torch
    from ray import tune

    from optforge.engine.trainer import run_trial

    torch.set_num_threads(1)
    run_trial(
        task, CONFIG, lambda step, point: tune.report({"step": step, "val_loss": point.val_loss}), dataset=dataset
    )


def plain_tune(task: TaskSpec, n: int, concurrency: int, storage: str) -> float:
    from ray import tune

    from optforge.engine.data import load_data

    started = time.perf_counter()
    trainable = tune.with_resources(
        tune.with_parameters(_minimal_trainable, task=task, dataset=load_data(task.data)), {"cpu": 1}
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, name="plain", verbose=0),
    )
    tuner.fit()
    return time.perf_counter() - started


def optforge_tune(task: TaskSpec, n: int, concurrency: int, storage: str) -> float:
    from optforge.search import run_study

    spec = StudySpec.model_validate(
        {
            "name": "overhead",
            "task": task.model_dump(),
            "search": {
                "n_trials": n,
                "families": ["adamw"],
                "schedules": ["cosine"],
                "early_stopping": "none",
                "max_concurrent": concurrency,
                "fixed": {
                    "adamw.lr": 3e-3,
                    "beta1": 0.9,
                    "beta2": 0.999,
                    "weight_decay": 0.01,
                    "warmup_fraction": 0.05,
                },
            },
        }
    )
    started = time.perf_counter()
    result = run_study(spec, storage_path=storage)
    assert len(result.trials) == n and all(t.status.value == "completed" for t in result.trials)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="identical trainings per method")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per trial")
    parser.add_argument("--trial-seconds", type=float, default=None, help="calibrate --steps to this trial length")
    parser.add_argument("--concurrency", type=int, default=1, help="trials at once under Ray")
    args = parser.parse_args()

    import tempfile

    import ray

    steps = calibrate(args.trial_seconds) if args.trial_seconds else args.steps
    task = task_for(steps)
    ray.init(num_cpus=max(2, args.concurrency), include_dashboard=False, log_to_driver=False, configure_logging=False)
    warm = task_for(20)  # start Ray's workers and import torch in them before anything is timed
    with tempfile.TemporaryDirectory() as tmp:
        plain_tune(warm, 1, 1, tmp)
        loop = plain_loop(task, args.trials)
        tuned = plain_tune(task, args.trials, args.concurrency, tmp)
        ours = optforge_tune(task, args.trials, args.concurrency, tmp)
    ray.shutdown()

    n = args.trials
    per_trial = loop / n
    print(
        f"\n{n} trials x {steps} steps (mlp width 64 on digits), concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs; one trial alone: {per_trial:.2f} s\n"
    )
    print(
        f"| {'method':<18} | {'total s':>8} | {'per trial s':>11} | {'overhead/trial s':>16} | {'overhead %':>10} "
        f"| {'x loop':>6} | {'x plain Tune':>12} |"
    )
    print(f"|{'-' * 20}|{'-' * 10}|{'-' * 13}|{'-' * 18}|{'-' * 12}|{'-' * 8}|{'-' * 14}|")
    for name, total in (("plain Python loop", loop), ("plain Ray Tune", tuned), ("optforge tune", ours)):
        extra = (total - loop) / n
        print(
            f"| {name:<18} | {total:>8.1f} | {total / n:>11.2f} | {extra:>16.2f} | {100 * extra / per_trial:>9.1f}% "
            f"| {total / loop:>6.2f} | {total / tuned:>12.2f} |"
        )


if __name__ == "__main__":
    main()
