"""μLO with its shipped weights against the SP learned optimizer, AdamW and transferred μAdam, on a held-out task.

    python benchmarks/mulo.py [--width 512] [--depth 2] [--steps 1000] [--seeds 3] [--proxy-width 64] [--threads 1]

The held-out task is a teacher-student classification whose teacher (data seed 100) meta-training never
saw (it drew seeds 0-3), trained at ``--width`` (8x the geometric mean, 64, of the 32-128 meta-training
widths; 4x the widest) for ``--steps`` steps (5x the longest meta-training horizon, 200). Rows:

- **MuLO (shipped)**: the ``mulo`` family through ``build_optimizer`` on the μP model, nothing tuned;
- **MuLO before meta-training**: the same with the meta-training run's starting weights (what PES added);
- **SP LO (shipped)**: ``StandardLO`` (meta-trained on SP models with the same budget) on the SP model;
- **AdamW, default LR**: the ``adamw`` family's defaults (lr 1e-3, weight decay 0.01, cosine) on the SP model;
- **μAdam, tuned LR transferred**: ``adamw`` with ``mup: true``, its LR picked on validation loss at
  ``--proxy-width`` over ``--lrs`` (seed 0), then used unchanged at ``--width``.

Final train loss (on the whole training split) and validation loss after the last step, mean ± std over
``--seeds`` seeds (model init and batch order; the data is fixed), and the mean minibatch loss over the 50
steps up to ``--mid-step`` (200, the longest meta-training horizon). Then the time of one training step
(batch, forward, backward, optimizer step: median of ``--time-steps``) of MuLO, of MuLO with
``compile=True`` and of AdamW on the same μP model, as ratios: the benchmark MLP at its batch size and at
4x it, and the built-in transformer (4096 tokens per batch). MuLO's network costs ~4.7k FLOPs per
parameter per step against the ~6 FLOPs per parameter per example (token) of a forward and backward
pass, so its relative cost falls as the batch grows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from optforge.engine import Dataset, build_model, build_optimizer, build_scheduler, load_data
from optforge.engine.batches import MinibatchStream
from optforge.engine.evaluation import evaluate, loss_function
from optforge.learned_opt import LearnedWeights, MetaTrainSpec, MuLO, StandardLO, UpdateNetwork, param_groups
from optforge.learned_opt.meta.trainer import initial_theta
from optforge.spec import TaskSpec, TrialConfig, load_spec

CONFIG = Path(__file__).resolve().parents[1] / "optforge" / "learned_opt" / "configs" / "mulo_v1.yaml"
HELD_OUT_DATA = {
    "name": "teacher_student_classification",
    "seed": 100,  # meta-training's synthetic tasks used data seeds 0-3
    "n_samples": 16384,  # 1000 steps x 128 examples: about 10 epochs of the 13k training examples
    "n_features": 32,
    "n_classes": 10,
}
MuP = bool
OptimizerFactory = Callable[[nn.Module, int], tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]]


@dataclass(frozen=True)
class Row:
    name: str
    mup: MuP
    factory: OptimizerFactory


def task_at(width: int, depth: int, steps: int, batch: int, seed: int, n_samples: int | None = None) -> TaskSpec:
    data = {**HELD_OUT_DATA, **({"n_samples": n_samples} if n_samples else {})}
    return TaskSpec.model_validate(
        {
            "model": {"name": "mlp", "width": width, "depth": depth},  # base_width: the engine's default, 128
            "data": data,
            "batch_size": batch,
            "steps": steps,
            "seed": seed,
        }
    )


def from_config(config: TrialConfig) -> OptimizerFactory:
    def make(model: nn.Module, steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = build_optimizer(model, config, total_steps=steps)
        return optimizer, build_scheduler(optimizer, config, steps)

    return make


def train(task: TaskSpec, data: Dataset, row: Row, mid_step: int) -> tuple[float, float, float]:
    """Train ``row``'s optimizer on ``task``: (training-split loss, validation loss) after the last step, and
    the mean minibatch loss over the 50 steps up to ``mid_step`` (the longest meta-training horizon)."""
    with torch.random.fork_rng():
        torch.manual_seed(task.seed)
        model = build_model(task, data, mup=row.mup)
        optimizer, scheduler = row.factory(model, task.steps)
        stream = MinibatchStream(data.x_train, data.y_train, task.batch_size, seed=task.seed)
        criterion = loss_function(data.kind)
        window: list[float] = []
        mid = float("nan")
        for step in range(1, task.steps + 1):
            x, y = stream.next()
            loss = criterion(model(x), y)
            if not torch.isfinite(loss):
                return float("nan"), float("nan"), mid
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if mid_step - 50 < step <= mid_step:
                window.append(float(loss.detach()))
                mid = sum(window) / len(window)
        train_loss, _ = evaluate(model, data.x_train, data.y_train, data.kind, chunk_size=2048)
        val_loss, _ = evaluate(model, data.x_val, data.y_val, data.kind, chunk_size=2048)
    return train_loss, val_loss, mid


def tune_muadam(args: argparse.Namespace, data: Dataset, console: Console) -> float:
    """The μAdam LR with the lowest validation loss at the proxy width (seed 0)."""
    task = task_at(args.proxy_width, args.depth, args.steps, args.batch, 0, args.n_samples)
    results = {}
    for lr in args.lrs:
        row = Row("μAdam", True, from_config(TrialConfig(family="adamw", hparams={"lr": lr}, mup=True)))
        results[lr] = train(task, data, row, args.mid_step)[1]
        console.print(f"  μAdam lr {lr:g} at width {args.proxy_width}: val loss {results[lr]:.4f}", highlight=False)
    finite = {lr: v for lr, v in results.items() if v == v}
    best = min(finite, key=finite.__getitem__)
    if best in (min(args.lrs), max(args.lrs)):
        console.print(f"  [yellow]warning[/]: the best LR {best:g} is at the edge of --lrs; widen the grid")
    return best


def step_time(model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset, batch: int, n: int) -> float:
    """Median seconds of one training step (batch gather, forward, backward, optimizer step)."""
    stream = MinibatchStream(data.x_train, data.y_train, batch, seed=0)
    criterion = loss_function(data.kind)
    times = []
    for i in range(n + 3):
        started = time.perf_counter()
        x, y = stream.next()
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 3:  # the first steps allocate state
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def timing(args: argparse.Namespace, data: Dataset) -> list[dict[str, float | str]]:
    """Step times of AdamW, MuLO and MuLO with ``compile=True`` on the same μP models, interleaved so that all
    three see the same machine load; the fastest of three medians each."""
    cases = [
        (
            f"MLP {args.width}x{args.depth}, batch {b}",
            task_at(args.width, args.depth, args.steps, b, 0, args.n_samples),
            data,
        )
        for b in (args.batch, 4 * args.batch)
    ]
    text = TaskSpec.model_validate({"model": {"name": "transformer"}, "data": {"name": "text"}})
    cases.append(("transformer 128x2, batch 64x64 tokens", text, load_data(text.data)))
    out: list[dict[str, float | str]] = []
    for label, task, task_data in cases:
        torch.manual_seed(0)
        model = build_model(task, task_data, mup=True)
        optimizers = {
            "adamw": build_optimizer(model, TrialConfig(family="adamw", mup=True), total_steps=args.steps),
            "mulo": build_optimizer(model, TrialConfig(family="mulo", schedule="constant", mup=True)),
            "mulo_compiled": MuLO(param_groups(model), compile=True),
        }
        best = {name: float("inf") for name in optimizers}
        for _ in range(3):
            for name, optimizer in optimizers.items():
                best[name] = min(best[name], step_time(model, optimizer, task_data, task.batch_size, args.time_steps))
        out.append(
            {
                "case": label,
                "params": sum(p.numel() for p in model.parameters()),
                **{f"{name}_ms": 1e3 * t for name, t in best.items()},
                "ratio": best["mulo"] / best["adamw"],
                "ratio_compiled": best["mulo_compiled"] / best["adamw"],
            }
        )
    return out


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="teacher-student examples (default 16384: about 10 epochs, so val loss shows overfitting; "
        "262144 gives every step fresh examples, so both losses measure optimization)",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--proxy-width", type=int, default=64, help="width μAdam's LR is tuned at")
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument(
        "--mid-step",
        type=int,
        default=200,
        help="also report the minibatch loss here (the longest meta-training horizon)",
    )
    parser.add_argument("--time-steps", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: the numbers do not depend on load balance)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="run only these rows (by the start of their name)")
    parser.add_argument("--skip-timing", action="store_true", help="leave out the step-time table")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(highlight=False, width=160)
    data = load_data(task_at(args.width, args.depth, args.steps, args.batch, 0, args.n_samples).data)
    started = time.perf_counter()

    init_weights = LearnedWeights.from_network(
        UpdateNetwork.from_vector(initial_theta(load_spec(MetaTrainSpec, CONFIG))), "mup", name="mulo_v1 init"
    )
    rows = [
        Row("MuLO (shipped)", True, from_config(TrialConfig(family="mulo", schedule="constant", mup=True))),
        Row(
            "MuLO before meta-training (its adam_like init)",
            True,
            lambda model, steps: (MuLO(param_groups(model), weights=init_weights), None),
        ),
        Row("SP LO (shipped)", False, lambda model, steps: (StandardLO(model.parameters()), None)),
        Row("AdamW, default LR", False, from_config(TrialConfig(family="adamw"))),
    ]
    wanted = lambda name: args.only is None or any(name.startswith(o) for o in args.only)  # noqa: E731
    results: dict[str, dict[str, list[float]]] = {}
    if wanted("μAdam"):
        best = tune_muadam(args, data, console)
        rows.append(
            Row(
                f"μAdam, LR {best:g} tuned at width {args.proxy_width}",
                True,
                from_config(TrialConfig(family="adamw", hparams={"lr": best}, mup=True)),
            )
        )
    for row in rows:
        if not wanted(row.name):
            continue
        train_losses, val_losses, mid_losses = [], [], []
        for seed in range(args.seeds):
            task = task_at(args.width, args.depth, args.steps, args.batch, seed, args.n_samples)
            tr, va, mid = train(task, data, row, args.mid_step)
            train_losses.append(tr)
            val_losses.append(va)
            mid_losses.append(mid)
            console.print(f"  {row.name} seed {seed}: train {tr:.4f} val {va:.4f} (step {args.mid_step}: {mid:.4f})")
        results[row.name] = {"train": train_losses, "val": val_losses, "mid": mid_losses}

    table = Table(
        title=f"held-out teacher-student (10 classes, {data.n_train} training examples), MLP width {args.width} "
        f"depth {args.depth}, {args.steps} steps, batch {args.batch}, {args.seeds} seeds"
    )
    for column in ("optimizer", f"train loss at step {args.mid_step}", "final train loss", "final val loss"):
        table.add_column(column, justify="left" if column == "optimizer" else "right")
    for name, res in results.items():
        table.add_row(name, mean_std(res["mid"]), mean_std(res["train"]), mean_std(res["val"]))
    console.print(table)

    times = [] if args.skip_timing else timing(args, data)
    timing_table = Table(
        title=f"one training step (batch, forward, backward, optimizer step) on CPU, {args.threads} thread"
    )
    for column in (
        "model",
        "parameters",
        "AdamW ms",
        "MuLO ms",
        "MuLO compiled ms",
        "MuLO / AdamW",
        "compiled / AdamW",
    ):
        timing_table.add_column(column, justify="left" if column == "model" else "right")
    for t in times:
        timing_table.add_row(
            str(t["case"]),
            f"{t['params']:,}",
            f"{t['adamw_ms']:.1f}",
            f"{t['mulo_ms']:.1f}",
            f"{t['mulo_compiled_ms']:.1f}",
            f"{t['ratio']:.2f}x",
            f"{t['ratio_compiled']:.2f}x",
        )
    if times:
        console.print(timing_table)
    console.print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": {k: v for k, v in vars(args).items() if k != "json"}, "results": results, "timing": times},
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
