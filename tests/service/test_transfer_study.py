"""A μTransfer study (``search.proxy``) through the real service: tuned at the proxy width, confirmed at the
target width with seeds, stored with both widths and shown by /best, the SDK, the CLI and the status page.

Tiny on purpose (an MLP 16 → 32 on digits, 20 steps, 3 proxy trials, the top 2 at 2 seeds): the time goes
into the three Tune runs (proxy search, target search, target re-seeds). SQLite only: what this covers is
the driver and the presenters; storing a phase and a width is the storage contract tests' job on both
backends.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest
from typer.testing import CliRunner

from optforge.cli.app import app
from optforge.client import Client
from optforge.storage.database import Storage
from service.conftest import finished, issue, service_settings, wait_for
from service.live import LiveService, streaming

PROXY, TARGET, TOP_K, SEEDS, N_TRIALS = 16, 32, 2, 2, 3


def transfer_spec() -> dict[str, Any]:
    return {
        "name": "digits-mutransfer",
        "task": {"model": {"name": "mlp", "width": TARGET, "depth": 1, "base_width": PROXY}, "data": {"name": "digits"},
                 "steps": 20, "eval_every": 10, "batch_size": 32},
        "search": {"n_trials": N_TRIALS, "families": ["adamw"], "schedules": ["cosine"], "early_stopping": "none",
                   "warm_start": False, "max_concurrent": 1, "proxy": {"width": PROXY, "top_k": TOP_K, "seeds": SEEDS}},
    }  # fmt: skip


@pytest.fixture(scope="module")
def study(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The transfer study, run to the end; with what the API, the event log and the status page say of it."""
    tmp: Path = tmp_path_factory.mktemp("transfer-service")
    url = f"sqlite:///{tmp / 'optforge.db'}"
    storage = Storage.open(url)
    token = issue(storage, "tess")
    with LiveService(service_settings(tmp, url), storage=storage) as live, live.client(token) as client:
        response = client.post("/api/v1/studies", json=transfer_spec())
        assert response.status_code == 201, response.text
        study_id = response.json()["id"]
        final = wait_for(client, study_id, finished, timeout=300)
        with streaming(client, f"/api/v1/studies/{study_id}/events", timeout=60) as stream:
            events = [json.loads(data) for _, _, data in stream]
        yield {
            "study": final,
            "trials": client.get(f"/api/v1/studies/{study_id}/trials").raise_for_status().json()["data"],
            "best": client.get(f"/api/v1/studies/{study_id}/best").raise_for_status().json(),
            "analysis": client.get(f"/web-api/studies/{study_id}/analysis").raise_for_status().json(),
            "events": events,
            "url": live.url,
            "token": token,
        }
    storage.close()


def by_phase(trials: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return [t for t in trials if t["phase"] == phase]


def same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal configurations up to float round-off on the way through Optuna."""
    if (a["family"], a["schedule"], a["mup"]) != (b["family"], b["schedule"], b["mup"]):
        return False
    return a["hparams"].keys() == b["hparams"].keys() and all(
        math.isclose(a["hparams"][k], b["hparams"][k], rel_tol=1e-9) for k in a["hparams"]
    )


def test_the_transfer_study_completes(study: dict[str, Any]) -> None:
    assert study["study"]["status"] == "completed", study["study"]["error"]


def test_proxy_trials_are_stored_at_the_proxy_width_in_mup(study: dict[str, Any]) -> None:
    proxy = by_phase(study["trials"], "search")
    assert len(proxy) == N_TRIALS
    assert all(t["width"] == PROXY and t["config"]["mup"] for t in proxy)
    assert all(t["status"] == "completed" for t in proxy)


def test_the_top_k_run_again_at_the_target_width_as_the_transfer_phase_with_each_seed(study: dict[str, Any]) -> None:
    proxy, target = by_phase(study["trials"], "search"), by_phase(study["trials"], "transfer")
    assert {t["phase"] for t in study["trials"]} == {"search", "transfer"}
    assert len(target) == TOP_K * SEEDS
    assert all(t["width"] == TARGET and t["status"] == "completed" for t in target)
    proxy_top = sorted(proxy, key=lambda t: t["final"])[:TOP_K]  # val_loss is minimized
    for source in proxy_top:
        runs = [t for t in target if same_config(t["config"], source["config"])]
        assert sorted(t["seed"] for t in runs) == list(range(SEEDS)), source["config"]


def test_the_best_is_the_best_mean_at_the_target_and_names_both_widths(study: dict[str, Any]) -> None:
    best, target = study["best"], by_phase(study["trials"], "transfer")
    assert (best["proxy_width"], best["target_width"]) == (PROXY, TARGET)
    assert best["stats"]["n"] == SEEDS and sorted(best["stats"]["seeds"]) == list(range(SEEDS))
    means = []
    for config in [t["config"] for t in target if t["seed"] == 0]:
        means.append(fmean(t["final"] for t in target if same_config(t["config"], config)))
    assert best["stats"]["mean"] == pytest.approx(min(means))
    assert f"width {TARGET}, tuned at width {PROXY} (μTransfer)" in best["snippet"]


def test_the_finished_event_carries_both_widths_and_the_rank_agreement(study: dict[str, Any]) -> None:
    last = study["events"][-1]
    assert last["kind"] == "finished"
    data = last["data"]
    assert data["status"] == "completed"
    assert (data["proxy_width"], data["target_width"]) == (PROXY, TARGET)
    # Two candidates: the proxy ranked them as the target did (+1) or the other way round (-1), as the page shows.
    points = study["analysis"]["transfer"]
    agreed = all(p["proxy_rank"] == p["target_rank"] for p in points)
    assert data["spearman"] == pytest.approx(1.0 if agreed else -1.0)
    assert data["kendall"] == pytest.approx(data["spearman"])


def test_the_status_page_ranks_each_candidate_at_both_widths(study: dict[str, Any]) -> None:
    points = study["analysis"]["transfer"]
    assert len(points) == TOP_K
    assert sorted(p["proxy_rank"] for p in points) == sorted(p["target_rank"] for p in points) == [1, 2]
    assert all((p["proxy_width"], p["target_width"]) == (PROXY, TARGET) for p in points)
    assert points[0]["target_value"] == pytest.approx(study["best"]["stats"]["mean"])


def test_the_sdk_and_the_cli_say_where_the_best_was_tuned_and_confirmed(study: dict[str, Any]) -> None:
    study_id = study["study"]["id"]
    with Client(study["url"], study["token"]) as client:
        summary = client.best(study_id).summary()
    assert f"over {SEEDS} seed(s) at width {TARGET}, tuned at width {PROXY} (μTransfer)" in summary
    printed = CliRunner().invoke(app, ["best", str(study_id), "--url", study["url"], "--token", study["token"]])
    assert printed.exit_code == 0, printed.output
    assert summary in printed.output
