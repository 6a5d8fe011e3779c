"""Time per training step of each built-in workload at its default size, through the real trainer.

    python benchmarks/engine_step_time.py [--steps 30] [--repeats 3] [--warmup 5] [--device cpu] [--threads N]

Each workload runs a short warm-up trial (allocator, kernels, lazy imports), then ``--repeats`` timed
trials that evaluate only at their last step; the fastest is shown (as ``timeit`` does: slower
repeats measure other processes on the machine, not the trainer). The trainer's own examples/s excludes that
evaluation, so ms/step covers exactly what a search pays per step: batch gather, forward, backward,
optimizer and scheduler step, and the divergence bookkeeping.
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from optforge.engine import load_data, run_trial
from optforge.spec import ModelSpec, TaskSpec, TrialConfig

WORKLOADS = {  # default ModelSpec size (width 128, depth 2) and default batch size 64 everywhere
    "mlp on digits": {"model": {"name": "mlp"}, "data": {"name": "digits"}},
    "cnn on digits": {"model": {"name": "cnn"}, "data": {"name": "digits"}},
    "transformer on pydoc text": {"model": {"name": "transformer"}, "data": {"name": "text"}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per trial")
    parser.add_argument("--repeats", type=int, default=3, help="timed trials per workload; the fastest counts")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--family", default="adamw")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    defaults = ModelSpec()
    table = Table(
        title=f"time per step, {args.family}, device {args.device}, {torch.get_num_threads()} threads, "
        f"width {defaults.width}, depth {defaults.depth}, batch 64"
    )
    for column in ("workload", "parameters", "ms/step", "examples/s"):
        table.add_column(column, justify="right" if column != "workload" else "left")
    config = TrialConfig(family=args.family)
    for label, fields in WORKLOADS.items():
        task = TaskSpec.model_validate(
            {**fields, "device": args.device, "steps": args.steps, "eval_every": args.steps, "max_eval_examples": 64}
        )
        data = load_data(task.data)
        run_trial(task.model_copy(update={"steps": args.warmup, "eval_every": args.warmup}), config, dataset=data)
        results = [run_trial(task, config, dataset=data) for _ in range(args.repeats)]
        result = results[0]
        if not all(r.curve for r in results):
            table.add_row(label, "-", result.status.value, result.error or "")
            continue
        per_s = max(r.curve[-1].examples_per_s for r in results)
        batch = result.info["batch_size"]
        table.add_row(label, f"{result.info['n_params']:,}", f"{1000 * batch / per_s:.2f}", f"{per_s:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
