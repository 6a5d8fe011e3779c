"""Warm-start a study from what earlier studies learned: ask ``recommend`` for the configurations that
won on the closest tasks, and have the new study evaluate them first.

    python examples/builtin_workload.py      # something to learn from (any finished study will do)
    python examples/warm_start.py            # --tiny (or OPTFORGE_EXAMPLE_TINY=1): seconds

The service does this by itself (``search.warm_start: true``, the default). Doing it by hand, as here,
lets you look at the recommendations first and choose which ones to trust.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from optforge.client import Client

SPECS = Path(__file__).resolve().parent / "specs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the optforge service (default: $OPTFORGE_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--tiny", action="store_true", default=os.environ.get("OPTFORGE_EXAMPLE_TINY") == "1")
    args = parser.parse_args()

    spec = yaml.safe_load((SPECS / ("digits_study_tiny.yaml" if args.tiny else "digits_study.yaml")).read_text())
    with Client(args.url) as client:
        recommendations = client.recommend(spec["task"], limit=3)
        if not recommendations:
            print("no stored configuration for a task like this yet: the study starts from scratch")
        for rec in recommendations:
            match = "same task" if rec.exact else f"distance {rec.distance:.2f}"
            print(f"study {rec.study_id} ({match}): {rec.config.family} + {rec.config.schedule}, "
                  f"{rec.metric} {rec.stats.mean:.4g} over {rec.stats.n} seed(s)")  # fmt: skip

        search = spec["search"]
        configs = [rec.config for rec in recommendations]
        # The study's space must hold every initial configuration: add their families and schedules.
        search["families"] = sorted({*search["families"], *(c.family for c in configs)})
        search["schedules"] = sorted({*search["schedules"], *(c.schedule for c in configs)})
        search["initial_configs"] = [c.model_dump(mode="json") for c in configs]
        search["warm_start"] = False  # these, and only these, are evaluated first
        spec["name"] += "-warm"

        study = client.submit(spec)
        print(f"submitted study {study.id}, starting from {len(configs)} recommended configuration(s)")
        study.wait()
        best = study.best()
        print(f"\nbest of study {study.id}: {best.summary()}")
        if recommendations:
            before = recommendations[0].stats.mean
            better = best.stats.mean < before if best.mode == "min" else best.stats.mean > before
            print(f"the best recommendation had {best.metric} {before:.4g}: "
                  f"{'improved on' if better else 'not beaten by'} this study")  # fmt: skip


if __name__ == "__main__":
    main()
