"""μTransfer on the status page: did the configurations keep their order from the proxy width to the target?

A μTransfer study tunes at a narrow proxy width (trials of phase ``search``) and re-runs its top-k
configurations at the target width (phase ``transfer``, possibly with several seeds). For every
configuration that ran at both widths this module gives its rank at each width, ranked among those
configurations only, so a perfect transfer lies on the diagonal.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from statistics import fmean

from optforge.service.driver import TRANSFER_PHASE
from optforge.service.web.importance import objective_of
from optforge.service.web.schemas import TransferPoint
from optforge.spec import TrialConfig, TrialRecord, TrialStatus

TARGET_PHASE = TRANSFER_PHASE  # the phase the study driver stores target-width runs under


def _key(config: TrialConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True)


def _means(trials: Sequence[TrialRecord], phase: str) -> tuple[dict[str, float], dict[str, TrialRecord]]:
    """Mean objective per configuration over the completed trials of ``phase`` (seeds averaged)."""
    values: dict[str, list[float]] = defaultdict(list)
    first: dict[str, TrialRecord] = {}
    for trial in trials:
        value = objective_of(trial)
        if trial.phase == phase and trial.status == TrialStatus.COMPLETED and value is not None:
            key = _key(trial.config)
            values[key].append(value)
            first.setdefault(key, trial)
    return {k: fmean(v) for k, v in values.items()}, first


def _ranks(means: dict[str, float], keys: list[str], mode: str) -> dict[str, int]:
    ordered = sorted(keys, key=lambda k: -means[k] if mode == "max" else means[k])
    return {k: i + 1 for i, k in enumerate(ordered)}


def transfer_points(trials: Sequence[TrialRecord], mode: str) -> list[TransferPoint]:
    """Proxy rank and target rank (1 = best) of each configuration run at both widths, by target rank.

    Empty for a study without a transfer phase.
    """
    proxy, proxy_trials = _means(trials, "search")
    target, target_trials = _means(trials, TARGET_PHASE)
    both = [k for k in target if k in proxy]
    if not both:
        return []
    proxy_rank, target_rank = _ranks(proxy, both, mode), _ranks(target, both, mode)
    points = [
        TransferPoint(
            family=proxy_trials[k].config.family,
            schedule=proxy_trials[k].config.schedule,
            proxy_trial_id=proxy_trials[k].id,
            proxy_rank=proxy_rank[k],
            target_rank=target_rank[k],
            proxy_value=proxy[k],
            target_value=target[k],
            proxy_width=proxy_trials[k].width,
            target_width=target_trials[k].width,
        )
        for k in both
    ]
    return sorted(points, key=lambda p: p.target_rank)
