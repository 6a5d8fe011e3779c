"""Train your own model, in your own plain PyTorch loop, with the optimizer and schedule a study found.

    python examples/train_with_best.py --study 3     # a finished study's id (`optforge list`)
    python examples/train_with_best.py               # no id: runs a small study on digits first
    python examples/train_with_best.py --tiny        # fewer steps (also OPTFORGE_EXAMPLE_TINY=1)

``best.build(model)`` returns a ready ``torch.optim`` optimizer and LR scheduler for *your* model, with
the tuned hyperparameters, weight decay on weight matrices only, and the schedule over your run's length.
It needs the full install (``pip install "optforge[all]"``): the SDK alone never imports torch.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from optforge.client import Client

SPECS = Path(__file__).resolve().parent / "specs"


def digits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits (bundled: no download), scaled to [0, 1], split 80/20."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the optforge service (default: $OPTFORGE_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--study", type=int, help="a finished study's id (default: run a small study first)")
    parser.add_argument("--tiny", action="store_true", default=os.environ.get("OPTFORGE_EXAMPLE_TINY") == "1")
    args = parser.parse_args()

    with Client(args.url) as client:
        if args.study is None:
            spec = SPECS / ("digits_study_tiny.yaml" if args.tiny else "digits_study.yaml")
            study = client.submit(spec).wait()
        else:
            study = client.study(args.study)
        best = study.best()
    print(f"using the best of study {study.id}: {best.summary()}")

    # Your model: anything with parameters. Here a CNN the study never saw (it tuned an MLP on the same data).
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 10),
    )
    steps = 30 if args.tiny else 600
    optimizer, scheduler = best.build(model, total_steps=steps)  # the schedule spans *this* run
    print(f"{type(optimizer).__name__} with lr {optimizer.param_groups[0]['lr']:.3g}, "
          f"{type(scheduler).__name__} over {steps} steps")  # fmt: skip

    x_train, y_train, x_val, y_val = digits()
    batches = torch.Generator().manual_seed(1)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        index = torch.randint(len(x_train), (64,), generator=batches)
        loss = loss_fn(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()  # once per optimizer step
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            with torch.no_grad():
                accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
            print(f"step {step:4d}  train loss {loss.item():.4f}  val accuracy {accuracy:.3f}  "
                  f"lr {scheduler.get_last_lr()[0]:.3g}")  # fmt: skip


if __name__ == "__main__":
    main()
