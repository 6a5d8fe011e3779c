"""Tune how to train a built-in workload (an MLP on scikit-learn's digits) through the Python SDK.

    optforge serve                                # in another terminal (or set OPTFORGE_URL / OPTFORGE_TOKEN)
    python examples/builtin_workload.py           # 12 trials of 300 steps: a few minutes on a laptop CPU
    python examples/builtin_workload.py --tiny    # 1 trial of 20 steps: a smoke test (also OPTFORGE_EXAMPLE_TINY=1)

It submits ``specs/digits_study.yaml``, follows the study with a progress bar (trials done, best so far
and its family), then prints the winning configuration and the PyTorch code that rebuilds it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from optforge.client import Client

SPECS = Path(__file__).resolve().parent / "specs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the optforge service (default: $OPTFORGE_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--tiny", action="store_true", default=os.environ.get("OPTFORGE_EXAMPLE_TINY") == "1")
    args = parser.parse_args()

    spec = SPECS / ("digits_study_tiny.yaml" if args.tiny else "digits_study.yaml")
    with Client(args.url) as client:  # the token comes from $OPTFORGE_TOKEN (a server on localhost may run open)
        study = client.submit(spec)  # a dict, a StudySpec or YAML/JSON text work too
        print(f"submitted study {study.id} ({study.name}): {study.progress.trials_total} trial(s)")
        study.wait()  # raises StudyFailed if the study fails, WaitTimeout with wait(timeout=...)

        best = study.best()
        print(f"\nbest of study {study.id}: {best.summary()}")
        print(f"hyperparameters: {best.config.hparams}")
        print(f"schedule {best.config.schedule}: {best.config.schedule_params}\n")
        print(best.snippet)


if __name__ == "__main__":
    main()
