"""Tune how to train *your own* model: the spec names a factory function instead of a built-in workload.

    PYTHONPATH=examples optforge serve --allow-user-code    # the service must be able to import my_model
    python examples/own_model.py                            # --tiny (or OPTFORGE_EXAMPLE_TINY=1): seconds

The model is ``my_model.make_model`` (a residual MLP written in plain PyTorch); the data is the built-in
digits set, but ``task.data.entrypoint`` can name your own loader the same way. A service started
without ``--allow-user-code`` refuses the spec with a 403 naming ``task.model.entrypoint``.
"""

from __future__ import annotations

import argparse
import os
import sys

from optforge.client import Client, Forbidden


def study_spec(tiny: bool) -> dict:
    return {
        "name": "my-residual-mlp" + ("-tiny" if tiny else ""),
        "task": {
            "model": {
                "entrypoint": "my_model:make_model",
                "width": 16 if tiny else 128,
                "depth": 1 if tiny else 3,
                "kwargs": {"dropout": 0.1},  # passed to make_model as they are
            },
            "data": {"name": "digits"},
            "batch_size": 32 if tiny else 64,
            "steps": 20 if tiny else 400,
            "eval_every": 10 if tiny else 40,
        },
        "search": {
            "n_trials": 1 if tiny else 16,
            "families": ["adamw", "sgd"] if tiny else ["adamw", "lion", "muon", "soap"],
            "schedules": ["cosine"] if tiny else ["cosine", "wsd"],
            "early_stopping": "none" if tiny else "asha",
            **({"ranges": {"lr": [0.001, 0.03]}} if tiny else {}),  # a 1-trial smoke test must not diverge
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the optforge service (default: $OPTFORGE_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--tiny", action="store_true", default=os.environ.get("OPTFORGE_EXAMPLE_TINY") == "1")
    args = parser.parse_args()

    with Client(args.url) as client:
        try:
            study = client.submit(study_spec(args.tiny))
        except Forbidden as exc:  # the service runs no user code
            for field, message in exc.errors:
                print(f"{field}: {message}", file=sys.stderr)
            sys.exit(2)
        print(f"submitted study {study.id} ({study.name}): {study.progress.trials_total} trial(s) of my_model")
        study.wait()
        best = study.best()
        print(f"\nbest of study {study.id}: {best.summary()}")
        print(f"hyperparameters: {best.config.hparams}")


if __name__ == "__main__":
    main()
