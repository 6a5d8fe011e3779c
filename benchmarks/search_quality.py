"""How good are the configurations optforge finds, for the compute it spends?

Two parts (``--part quality|early_stopping|all``):

**quality** — on each workload, at equal total optimizer steps (``budget = trials x steps``):

- ``adamw defaults``: AdamW lr 1e-3, cosine (one run, no search);
- ``adamw lr (tpe)``: AdamW + cosine with only the LR searched by Optuna TPE, every trial to the end;
- ``random (full)``: random search over the full default space, every trial to the end;
- ``optforge default``: the default search (multivariate TPE with group=True + ASHA), which runs
  trials until the same number of steps is spent (pruned trials count what they used).

Each method runs 3 times (search seeds 0, 1, 2); each chosen configuration is re-trained once on a
fresh seed, and the table shows that re-trained final validation loss as mean ± std over the 3
repetitions, plus the steps the re-trained run needed to reach the tuned-AdamW loss (mean over the
repetitions that reached it).

**early_stopping** — ASHA vs schedule-aware ASHA (``wsd_branch``) on a pool of random configurations
from the default space, each trained once to the end *with* branched evaluations at the rungs. From
that pool: the rank correlation of each rung's metric with the final metric (raw vs branched), and
simulated successive halving at equal compute (plain ASHA gets more trials to match the branches'
cost): the regret of the configuration each picks.

    python benchmarks/search_quality.py               # small: 2 workloads, 10-trial budgets (~15 min on 2 cores)
    python benchmarks/search_quality.py --full        # 3 workloads, 30-trial budgets, longer runs
    python benchmarks/search_quality.py --part early_stopping
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from optforge.spec import StudyEvent, StudyEventKind, StudySpec, TaskSpec, TrialConfig

SEEDS = (0, 1, 2)


def workloads(full: bool) -> dict[str, dict[str, Any]]:
    steps = 300 if full else 120
    base = {"steps": steps, "eval_every": steps // 12, "batch_size": 64}
    out = {
        "digits mlp": {**base, "model": {"name": "mlp", "width": 128 if full else 64}, "data": {"name": "digits"}},
        "teacher-student regression": {
            **base,
            "model": {"name": "mlp", "width": 128 if full else 64},
            "data": {"name": "teacher_student_regression", "n_samples": 4096 if full else 2048, "n_features": 32},
        },
    }
    if full:
        out["digits cnn"] = {**base, "model": {"name": "cnn", "width": 32}, "data": {"name": "digits"}}
    return out


# ---- part 1: quality at equal steps -----------------------------------------------------------------


@dataclass
class Pick:
    config: TrialConfig
    steps_used: int


class StepCounter:
    """Counts the steps the study's trials have taken (from their reported points)."""

    def __init__(self, budget: int | None = None) -> None:
        self.latest: dict[str, int] = {}
        self.budget = budget

    def __call__(self, event: StudyEvent) -> None:
        if event.kind == StudyEventKind.TRIAL_RESULT:
            self.latest[event.trial_id or ""] = int(event.data["point"]["step"])
        elif event.kind == StudyEventKind.TRIAL_FINISHED:
            self.latest[event.trial_id or ""] = int(event.data["result"]["steps"])

    @property
    def used(self) -> int:
        return sum(self.latest.values())

    def exhausted(self) -> bool:
        return self.budget is not None and self.used >= self.budget


def search_pick(task: dict, search: dict, seed: int, budget: int | None = None) -> Pick:
    from optforge.search import run_study

    counter = StepCounter(budget)
    spec = StudySpec.model_validate({"name": "quality", "task": task, "search": {**search, "seed": seed}})
    result = run_study(spec, reporter=counter, should_stop=counter.exhausted if budget else None)
    best = result.best_config or TrialConfig()
    return Pick(best, counter.used)


def methods(task: dict, n_trials: int, seed: int) -> dict[str, Pick]:
    budget = n_trials * task["steps"]
    lr_only = {
        "families": ["adamw"],
        "schedules": ["cosine"],
        "early_stopping": "none",
        "n_trials": n_trials,
        "fixed": {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01, "warmup_fraction": 0.05},
    }
    return {
        "adamw defaults": Pick(TrialConfig(family="adamw", schedule="cosine"), task["steps"]),
        "adamw lr (tpe)": search_pick(task, lr_only, seed),
        "random (full)": search_pick(task, {"sampler": "random", "early_stopping": "none", "n_trials": n_trials}, seed),
        # ASHA stops about two trials in three at the first rung, so about twice the trials fit the budget;
        # the step budget, not the trial count, ends the search.
        "optforge default": search_pick(task, {"n_trials": 2 * n_trials}, seed, budget=budget),
    }


def retrain(task: dict, config: TrialConfig, seed: int) -> tuple[float, list[tuple[int, float]]]:
    from optforge.engine.trainer import run_trial

    result = run_trial(TaskSpec.model_validate({**task, "seed": seed}), config)
    final = result.final if result.final is not None and result.status.value == "completed" else math.inf
    return final, [(p.step, p.val_loss) for p in result.curve if p.val_loss is not None]


def quality(full: bool) -> None:
    n_trials = 30 if full else 10
    for name, task in workloads(full).items():
        started = time.perf_counter()
        finals: dict[str, list[float]] = {}
        curves: dict[str, list[list[tuple[int, float]]]] = {}
        used: dict[str, list[int]] = {}
        for seed in SEEDS:
            for method, pick in methods(task, n_trials, seed).items():
                final, curve = retrain(task, pick.config, 1000 + seed)
                finals.setdefault(method, []).append(final)
                curves.setdefault(method, []).append(curve)
                used.setdefault(method, []).append(pick.steps_used)
        target = statistics.fmean(finals["adamw lr (tpe)"])
        print(
            f"\n### {name}: {task['steps']} steps per run, budget {n_trials} x {task['steps']} = "
            f"{n_trials * task['steps']} steps per search ({time.perf_counter() - started:.0f} s)\n"
        )
        print(
            f"| method | final val loss (mean ± std, 3 seeds) | steps to reach tuned-AdamW loss {target:.4f} "
            "| search steps used |"
        )
        print("|---|---|---|---|")
        for method, values in finals.items():
            finite = [v for v in values if math.isfinite(v)]
            mean = statistics.fmean(finite) if finite else math.inf
            std = statistics.stdev(finite) if len(finite) > 1 else 0.0
            reached = [next((s for s, v in c if v <= target), None) for c in curves[method]]
            hit = [s for s in reached if s is not None]
            reach = f"{statistics.fmean(hit):.0f} ({len(hit)}/3 reached)" if hit else "never (0/3)"
            print(f"| {method} | {mean:.4f} ± {std:.4f} | {reach} | {statistics.fmean(used[method]):.0f} |")


# ---- part 2: ASHA vs schedule-aware ASHA ------------------------------------------------------------


@dataclass
class Run:
    config: TrialConfig
    final: float
    raw: dict[int, float]  # rung step -> metric at that step
    branched: dict[int, float]  # rung step -> metric after the branched cooldown


def pool(task: TaskSpec, rungs: tuple[int, ...], size: int, fraction: float) -> list[Run]:
    import optuna

    from optforge.engine.data import load_data
    from optforge.search.branching import run_branched_trial
    from optforge.search.space import SearchSpace
    from optforge.spec import SearchSpec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.from_spec(SearchSpec())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    data = load_data(task.data)
    runs = []
    for _ in range(size):
        trial = study.ask()
        config = space.sample(trial)
        study.tell(trial, 0.0)
        raw: dict[int, float] = {}
        branched: dict[int, float] = {}

        def report(step: int, point: Any, judged: Any, raw: dict = raw, branched: dict = branched) -> None:
            if judged is not None:
                raw[step], branched[step] = point.val_loss, judged.val_loss

        result = run_branched_trial(task, config, report, dataset=data, branch_steps=rungs, branch_fraction=fraction)
        final = result.final if result.status.value == "completed" and result.final is not None else math.inf
        runs.append(Run(config, final, raw, branched))
    return runs


def successive_halving(
    runs: list[Run], rungs: tuple[int, ...], rf: int, steps: int, judge: str, fraction: float
) -> tuple[float, int]:
    """Synchronous successive halving over ``runs``: (final metric of the pick, steps spent)."""
    alive = list(runs)
    spent = 0
    previous = 0
    for rung in rungs:
        spent += len(alive) * (rung - previous)
        if judge == "branched":
            spent += len(alive) * max(1, round(fraction * rung))
        previous = rung
        metric = {id(r): (r.branched if judge == "branched" else r.raw).get(rung, math.inf) for r in alive}
        keep = max(1, math.ceil(len(alive) / rf))
        alive = sorted(alive, key=lambda r: metric[id(r)])[:keep]
    spent += len(alive) * (steps - previous)
    return min(r.final for r in alive), spent


def early_stopping(full: bool) -> None:
    for name, task in workloads(full).items():
        compare_early_stopping(name, TaskSpec.model_validate(task), full)


def compare_early_stopping(name: str, task: TaskSpec, full: bool) -> None:
    from scipy.stats import spearmanr

    from optforge.search.early_stopping import Rungs
    from optforge.search.runner import BRANCH_FRACTION
    from optforge.spec import SearchSpec

    search = SearchSpec()
    rungs = Rungs.plan(task, search)
    size = 120 if full else 40
    started = time.perf_counter()
    runs = pool(task, rungs.steps, size, BRANCH_FRACTION)
    ok = [r for r in runs if math.isfinite(r.final)]
    best = min(r.final for r in ok)
    print(
        f"\n### ASHA vs wsd_branch: {size} random configurations of the default space, {name}, "
        f"{task.steps} steps, rungs {list(rungs.steps)}, rf {rungs.reduction_factor}, branch {BRANCH_FRACTION:g} "
        f"({time.perf_counter() - started:.0f} s)\n"
    )
    print("| rung | Spearman(rung metric, final): plain | branched |")
    print("|---|---|---|")
    for rung in rungs.steps:
        both = [r for r in ok if rung in r.raw and math.isfinite(r.raw[rung]) and math.isfinite(r.branched[rung])]
        finals = [r.final for r in both]
        plain = spearmanr([r.raw[rung] for r in both], finals).statistic
        branched = spearmanr([r.branched[rung] for r in both], finals).statistic
        print(f"| {rung} | {plain:.3f} | {branched:.3f} |")

    rng = random.Random(0)
    n = 12
    draws = 400
    cost = {}
    for judge in ("raw", "branched"):
        cost[judge] = statistics.fmean(
            successive_halving(
                rng.sample(runs, n), rungs.steps, rungs.reduction_factor, task.steps, judge, BRANCH_FRACTION
            )[1]
            for _ in range(50)
        )
    n_plain = round(n * cost["branched"] / cost["raw"])  # plain ASHA gets the branches' compute as extra trials
    print(
        f"\nsimulated successive halving, {draws} draws; wsd_branch gets {n} trials, plain ASHA {n_plain} "
        "(equal compute); regret = final val loss of the pick - best in the pool "
        f"({best:.4f})\n"
    )
    print("| method | trials | mean steps | mean regret | median regret | pick in pool top 10% |")
    print("|---|---|---|---|---|---|")
    top = sorted(r.final for r in ok)[max(0, len(ok) // 10 - 1)]
    for label, judge, count in (
        ("asha", "raw", n),
        ("asha (equal compute)", "raw", n_plain),
        ("wsd_branch", "branched", n),
    ):
        picks = [
            successive_halving(
                rng.sample(runs, count), rungs.steps, rungs.reduction_factor, task.steps, judge, BRANCH_FRACTION
            )
            for _ in range(draws)
        ]
        regrets = [p - best for p, _ in picks]
        finite = [r for r in regrets if math.isfinite(r)]
        print(
            f"| {label} | {count} | {statistics.fmean(s for _, s in picks):.0f} | "
            f"{statistics.fmean(finite):.4f} | {statistics.median(finite):.4f} | "
            f"{sum(p <= top for p, _ in picks) / draws:.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="bigger workloads and budgets")
    parser.add_argument("--part", choices=("quality", "early_stopping", "all"), default="all")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # like a 1-CPU trial; extra threads only contend on a shared 2-core machine
    if args.part in ("early_stopping", "all"):
        early_stopping(args.full)
    if args.part in ("quality", "all"):
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        quality(args.full)
        ray.shutdown()


if __name__ == "__main__":
    main()
