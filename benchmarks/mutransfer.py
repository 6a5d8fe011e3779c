"""Does the best learning rate stay put as the model widens? SP against μP, on the MLP and the char transformer.

For each workload, width and parametrization, trains every LR of a log-spaced grid (with the real trainer,
``run_trial``) and records the final training loss (mean over the last evaluation window; the μTransfer
papers rank by training loss too). Then prints, per parametrization:

- the optimal LR at each width (grid argmin, and a parabola fitted in log-LR through the argmin and its
  two neighbours), and the *shift factor*: largest / smallest optimal LR across the widths;
- the *transfer*: the widest width's loss at the narrowest width's optimal LR, next to the widest width's
  best loss, and the gap in %.

Targets (issue 8): under μP the optimal LR shifts by at most 2x across a 16x width change, and the
transferred configuration comes within 2% of the target-width optimum. The SP numbers are shown beside.
Writes ``docs/mutransfer_<workload>.png`` (loss against LR, one line per width, SP and μP side by side).

    python benchmarks/mutransfer.py --seeds 2 --save mt.json     # what docs/mup.md quotes (~1 h on 2 cores)
    python benchmarks/mutransfer.py --workload mlp --widths 64,256,1024 --steps 100   # a quicker look
    python benchmarks/mutransfer.py --replot mt.json other.json  # redraw from saved results (seeds pooled)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from optforge.engine import load_data, run_trial
from optforge.spec import TaskSpec, TrialConfig, TrialStatus

PARAMS = ("sp", "mup")
LABEL = {"sp": "standard parametrization", "mup": "μP"}
WORKLOADS: dict[str, dict[str, Any]] = {
    # Teacher-student classification with label noise: a loss floor well above zero, so no width "solves"
    # it and the loss keeps ranking LRs. Base width 128 = ModelSpec's default.
    "mlp": {
        "model": {"name": "mlp", "depth": 3, "base_width": 128},
        "data": {"name": "teacher_student_classification", "n_samples": 8192, "n_features": 32, "difficulty": 2.0},
        "batch_size": 128,
        "widths": "64,128,256,512,1024",
        "steps": 200,
        "lrs": (2.5e-4, 0.128, 10),  # low, high, count: a factor 2 apart, the resolution of the 2x target
    },
    # Four heads at every width, so the head size grows with width and μP's 1/d attention matters.
    "transformer": {
        "model": {"name": "transformer", "depth": 2, "base_width": 128, "kwargs": {"heads": 4}},
        "data": {"name": "text", "seq_len": 32, "max_chars": 200_000},
        "batch_size": 16,
        "widths": "32,64,128,256,512",  # 1024 would take hours per LR sweep on a 2-core CPU
        "steps": 150,
        "lrs": (2.5e-4, 0.064, 9),
    },
}


def lr_grid(low: float, high: float, count: int) -> list[float]:
    step = (math.log10(high) - math.log10(low)) / (count - 1)
    return [float(f"{10 ** (math.log10(low) + i * step):.3g}") for i in range(count)]


def train_loss(task: TaskSpec, config: TrialConfig, dataset: Any) -> float:
    """The final training loss (mean over the last evaluation window); inf if the run diverged."""
    result = run_trial(task, config, dataset=dataset)
    if result.status != TrialStatus.COMPLETED or not result.curve:
        return math.inf
    loss = result.curve[-1].train_loss
    return loss if math.isfinite(loss) else math.inf


def sweep(
    name: str,
    widths: list[int],
    lrs: list[float],
    steps: int,
    seeds: int,
    family: str,
    base_width: int,
    seed_offset: int = 0,
    checkpoint: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Train every (width, parametrization, LR, seed); ``checkpoint`` gets the results after each row."""
    spec = WORKLOADS[name]
    base = {k: v for k, v in spec.items() if k in ("model", "data", "batch_size")}
    base["model"] = {**base["model"], "base_width": base_width}
    dataset = load_data(TaskSpec.model_validate(base).data)
    losses: dict[str, dict[str, dict[str, list[float]]]] = {p: {} for p in PARAMS}
    results = {"workload": name, "widths": widths, "lrs": lrs, "steps": steps, "seeds": seeds, "family": family,
               "base_width": base_width, "seed_offset": seed_offset, "losses": losses}  # fmt: skip
    for width in widths:
        for param in PARAMS:
            row: dict[str, list[float]] = {}
            started = time.perf_counter()
            for lr in lrs:
                runs = []
                for seed in range(seed_offset, seed_offset + seeds):
                    task = TaskSpec.model_validate(
                        {
                            **base,
                            "model": {**base["model"], "width": width},
                            "steps": steps,
                            "eval_every": max(1, steps // 10),  # the loss is the mean over the last 10%
                            "max_eval_examples": 256,  # validation is not what is ranked here; keep it cheap
                            "seed": seed,
                            "device": "cpu",
                        }
                    )
                    config = TrialConfig(family=family, hparams={"lr": lr}, schedule="cosine", mup=param == "mup")
                    runs.append(train_loss(task, config, dataset))
                row[str(lr)] = runs
            losses[param][str(width)] = row
            checkpoint(results)
            print(f"  {name} {param:>3} width {width:>5}: {time.perf_counter() - started:6.1f} s", flush=True)
    return results


def mean_loss(runs: list[float]) -> float:
    return math.inf if any(not math.isfinite(v) for v in runs) else statistics.fmean(runs)


def optimum(lrs: list[float], losses: list[float]) -> tuple[float, float, float]:
    """(grid argmin LR, parabola-refined LR, best loss). The refinement stays within the grid neighbours."""
    i = min(range(len(lrs)), key=lambda k: losses[k])
    if 0 < i < len(lrs) - 1 and all(math.isfinite(losses[k]) for k in (i - 1, i, i + 1)):
        x0, x1, x2 = (math.log(lrs[k]) for k in (i - 1, i, i + 1))
        y0, y1, y2 = losses[i - 1], losses[i], losses[i + 1]
        denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
        b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
        if a > 0:
            return lrs[i], math.exp(min(max(-b / (2 * a), x0), x2)), losses[i]
    return lrs[i], lrs[i], losses[i]


def summarize(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    widths, lrs = results["widths"], results["lrs"]
    out = {}
    for param in PARAMS:
        curves = {w: [mean_loss(results["losses"][param][str(w)][str(lr)]) for lr in lrs] for w in widths}
        optima = {w: optimum(lrs, curves[w]) for w in widths}
        proxy, target = widths[0], widths[-1]
        proxy_lr = optima[proxy][0]
        transferred = curves[target][lrs.index(proxy_lr)]
        best = optima[target][2]
        out[param] = {
            "curves": curves,
            "optima": optima,
            "shift_grid": max(o[0] for o in optima.values()) / min(o[0] for o in optima.values()),
            "shift_fit": max(o[1] for o in optima.values()) / min(o[1] for o in optima.values()),
            "transfer_loss": transferred,
            "target_best": best,
            "gap_pct": 100 * (transferred - best) / best if math.isfinite(transferred) else math.inf,
            # every narrower width as the proxy: (its optimal LR, the target's loss there, the gap in %)
            "from_each": {
                w: (
                    optima[w][0],
                    curves[target][lrs.index(optima[w][0])],
                    100 * (curves[target][lrs.index(optima[w][0])] - best) / best,
                )
                for w in widths[:-1]
            },
        }
    return out


def print_table(results: dict[str, Any], summary: dict[str, dict[str, Any]]) -> None:
    widths = results["widths"]
    print(
        f"\n{results['workload']} · {results['family']} · {results['steps']} steps · {results['seeds']} seed(s) · "
        f"LR grid {results['lrs'][0]:g}..{results['lrs'][-1]:g} ({len(results['lrs'])} values)"
    )
    print(f"{'param':<5} {'width':>6} {'opt LR (grid)':>14} {'opt LR (fit)':>13} {'best loss':>10}")
    for param in PARAMS:
        s = summary[param]
        for w in widths:
            grid, fit, loss = s["optima"][w]
            print(f"{param:<5} {w:>6} {grid:>14.3g} {fit:>13.3g} {loss:>10.4f}")
    ratio = widths[-1] // widths[0]
    print(
        f"\n{'param':<5} {'LR shift (grid)':>16} {'LR shift (fit)':>15}   "
        f"{'loss at w=' + str(widths[-1]) + ' with w=' + str(widths[0]) + ' optimal LR':>36} {'best':>8} {'gap':>8}"
    )
    for param in PARAMS:
        s = summary[param]
        print(
            f"{param:<5} {s['shift_grid']:>15.2f}x {s['shift_fit']:>14.2f}x   {s['transfer_loss']:>36.4f} "
            f"{s['target_best']:>8.4f} {s['gap_pct']:>7.2f}%"
        )
    print(f"(width range {widths[0]}..{widths[-1]} = {ratio}x; targets under μP: shift <= 2x, gap <= 2%)")
    print(f"\ntransfer to width {widths[-1]} from each proxy width: proxy-optimal LR -> target loss (gap to best)")
    for param in PARAMS:
        cells = [
            f"{w}: {lr:.3g} -> {loss:.4f} ({gap:+.1f}%)" for w, (lr, loss, gap) in summary[param]["from_each"].items()
        ]
        print(f"{param:<5} " + " | ".join(cells))


def plot(results: dict[str, Any], summary: dict[str, dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths, lrs = results["widths"], results["lrs"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    cmap = plt.get_cmap("viridis")
    finite = [v for p in PARAMS for c in summary[p]["curves"].values() for v in c if math.isfinite(v)]
    low, high = min(finite), max(finite)
    for ax, param in zip(axes, PARAMS, strict=True):
        for i, w in enumerate(widths):
            colour = cmap(i / max(1, len(widths) - 1))
            ys = summary[param]["curves"][w]
            ax.plot(lrs, [y if math.isfinite(y) else float("nan") for y in ys], marker="o", ms=3, color=colour,
                    label=f"width {w}")  # fmt: skip
            grid, _, best = summary[param]["optima"][w]
            ax.plot([grid], [best], marker="*", ms=11, color=colour, markeredgecolor="black")
        ax.set_xscale("log")
        ax.set_title(f"{LABEL[param]} · LR shift x{summary[param]['shift_grid']:.2f}", fontsize=10)
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3)
        ax.set_ylim(low - 0.05 * (high - low), min(high, low + 1.5 * (high - low)) + 0.05 * (high - low))
    axes[0].set_ylabel(f"final training loss ({results['steps']} steps)")
    axes[1].legend(fontsize=8)
    fig.suptitle(
        f"μTransfer · {results['workload']} · {results['family']} · base width "
        f"{results.get('base_width', WORKLOADS[results['workload']]['model']['base_width'])} · "
        f"{results['steps']} steps · {results['seeds']} seed(s) · ★ = best LR per width",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def merge(saved: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One result per workload: the seeds of sweeps with the same widths and LRs pooled."""
    out: dict[str, dict[str, Any]] = {}
    for results in (r for batch in saved for r in batch):
        first = out.setdefault(results["workload"], json.loads(json.dumps(results)))
        if first is results or first["losses"] is results["losses"]:
            continue
        default_base = WORKLOADS[results["workload"]]["model"]["base_width"]
        if (first["lrs"], first["steps"], first.get("base_width", default_base)) != (
            results["lrs"],
            results["steps"],
            results.get("base_width", default_base),
        ):
            raise SystemExit(f"{results['workload']}: saved sweeps differ in LRs, steps or base width")
        if first.get("seed_offset", 0) == results.get("seed_offset", 0):
            continue  # the same seeds saved twice
        for param, by_width in results["losses"].items():
            for width, row in by_width.items():
                if width in first["losses"][param]:
                    for lr, runs in row.items():
                        first["losses"][param][width][lr] += runs
        first["seeds"] += results["seeds"]
    return list(out.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["mlp", "transformer", "both"], default="both")
    parser.add_argument("--widths", help="comma-separated widths (default: the workload's)")
    parser.add_argument("--steps", type=int, help="training steps per run (default: the workload's)")
    parser.add_argument("--lrs", type=int, help="number of LR values (default: the workload's)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per (width, LR); losses are averaged")
    parser.add_argument("--seed-offset", type=int, default=0, help="first seed (to add seeds to a saved sweep)")
    parser.add_argument("--family", default="adamw")
    parser.add_argument("--base-width", type=int, help="μP base width (default: the workload's, 128)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: on a shared machine more threads only contend)"
    )
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    parser.add_argument("--save", type=Path, help="write the raw results as JSON here")
    parser.add_argument(
        "--replot", type=Path, nargs="+", help="skip training: print and plot saved JSON (several: seeds are merged)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.replot:
        all_results = merge([json.loads(path.read_text()) for path in args.replot])
    else:
        names = ["mlp", "transformer"] if args.workload == "both" else [args.workload]
        all_results = []
        for name in names:
            spec = WORKLOADS[name]
            widths = [int(w) for w in (args.widths or spec["widths"]).split(",")]
            low, high, count = spec["lrs"]
            lrs = lr_grid(low, high, args.lrs or count)
            done = list(all_results)

            def save(partial: dict[str, Any], done: list[dict[str, Any]] = done) -> None:
                if args.save:
                    args.save.write_text(json.dumps([*done, partial], indent=1))

            base_width = args.base_width or spec["model"]["base_width"]
            steps = args.steps or spec["steps"]
            all_results.append(
                sweep(name, widths, lrs, steps, args.seeds, args.family, base_width, args.seed_offset, save)
            )
    for results in all_results:
        # A partial save (an interrupted sweep) is summarized over the widths it completed in both parametrizations.
        results["widths"] = [int(w) for w in results["widths"] if all(str(w) in results["losses"][p] for p in PARAMS)]
        summary = summarize(results)
        print_table(results, summary)
        path = args.out_dir / f"mutransfer_{results['workload']}.png"
        print(f"wrote {plot(results, summary, path)}")


if __name__ == "__main__":
    main()
