"""A study through the HTTP API of a running service, with real Ray and a real database (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import torch

from optforge.catalog import get_family
from service.conftest import Service, finished, tiny_spec, wait_for
from service.live import streaming

KINDS_OF_A_FULL_STUDY = {"started", "trial_started", "trial_result", "trial_finished", "best_changed", "finished"}


def long_spec() -> dict[str, Any]:
    spec = tiny_spec("bob-long", n_trials=6, steps=50_000, early_stopping="none")
    spec["task"]["eval_every"] = 500
    return spec


@pytest.fixture(scope="module")
def completed(service: Service) -> dict[str, Any]:
    """Alice's tiny study, submitted and watched over the live stream until it finished."""
    with service.client(service.tokens.alice) as client:
        response = client.post("/api/v1/studies", json=tiny_spec("alice-digits"))
        assert response.status_code == 201, response.text
        created = response.json()
        events = []
        with streaming(client, f"/api/v1/studies/{created['id']}/events", timeout=180) as stream:
            for event, ident, data in stream:
                events.append((event, int(ident), json.loads(data)))
        study = client.get(f"/api/v1/studies/{created['id']}").json()
    return {"created": created, "events": events, "study": study}


def test_submitting_returns_201_with_the_id_and_the_queued_study(completed: dict[str, Any]) -> None:
    created = completed["created"]
    assert created["id"] >= 1
    assert created["status"] in ("queued", "running")
    assert created["owner"] == "alice"
    assert created["spec"]["search"]["n_trials"] == 4


def test_the_live_stream_carries_every_kind_of_event_in_order_and_ends_with_finished(completed: dict[str, Any]) -> None:
    events = completed["events"]
    kinds = [kind for kind, _, _ in events]
    assert set(kinds) >= KINDS_OF_A_FULL_STUDY
    assert kinds[-1] == "finished" and kinds.count("finished") == 1
    ids = [ident for _, ident, _ in events]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # consecutive: nothing skipped, nothing repeated
    assert events[-1][2]["data"]["status"] == "completed"
    assert sum(kind == "trial_finished" for kind in kinds) == 4


def test_a_finished_study_shows_full_progress_timing_and_its_best_trial(
    service: Service, completed: dict[str, Any]
) -> None:
    study = completed["study"]
    assert study["status"] == "completed"
    assert study["progress"]["trials_finished"] == study["progress"]["trials_total"] == 4
    assert study["progress"]["fraction"] == 1.0
    assert study["elapsed_s"] > 0 and study["finished_at"] >= study["started_at"]
    with service.client(service.tokens.alice) as client:
        trials = client.get(f"/api/v1/studies/{study['id']}/trials").json()
    completed_values = [t["final"] for t in trials["data"] if t["status"] == "completed"]
    assert study["best"]["value"] == min(completed_values)  # val_loss is minimized
    assert study["best"]["family"] in ("adamw", "lion")


def test_trials_and_their_curves_are_stored_as_they_ran(service: Service, completed: dict[str, Any]) -> None:
    study_id = completed["study"]["id"]
    with service.client(service.tokens.alice) as client:
        trials = client.get(f"/api/v1/studies/{study_id}/trials").json()
        assert trials["count"] == 4
        assert {t["status"] for t in trials["data"]} <= {"completed", "pruned", "diverged"}
        assert sorted(t["number"] for t in trials["data"]) == [0, 1, 2, 3]
        trial = next(t for t in trials["data"] if t["status"] == "completed")
        curve = client.get(f"/api/v1/studies/{study_id}/trials/{trial['id']}/metrics").json()
        later = client.get(f"/api/v1/studies/{study_id}/trials/{trial['id']}/metrics", params={"after_step": 20}).json()
    steps = [p["step"] for p in curve["data"]]
    assert steps == sorted(steps) and steps[-1] == trial["steps"] == 40
    assert curve["count"] == len(steps) >= 4  # one evaluation every 10 steps
    assert [p["step"] for p in later["data"]] == [s for s in steps if s > 20]
    assert curve["data"][-1]["val_loss"] == pytest.approx(trial["final"])


def test_the_best_configuration_comes_with_seed_stats_and_a_snippet_that_builds_it(
    service: Service, completed: dict[str, Any]
) -> None:
    study = completed["study"]
    with service.client(service.tokens.alice) as client:
        best = client.get(f"/api/v1/studies/{study['id']}/best").json()
    assert best["config"]["family"] == study["best"]["family"]
    assert best["stats"]["n"] == 1 and best["stats"]["mean"] == pytest.approx(study["best"]["value"])
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    namespace: dict[str, Any] = {"model": model}
    exec(best["snippet"], namespace)
    optimizer, scheduler = namespace["optimizer"], namespace["scheduler"]
    assert type(optimizer).__name__ == get_family(best["config"]["family"]).constructor.split(":")[1]
    loss = model(torch.randn(4, 8)).square().mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] > 0


def test_the_stream_resumes_after_last_event_id(service: Service, completed: dict[str, Any]) -> None:
    study_id, events = completed["study"]["id"], completed["events"]
    cut = events[len(events) // 2][1]
    with (
        service.client(service.tokens.alice) as client,
        streaming(client, f"/api/v1/studies/{study_id}/events", headers={"Last-Event-ID": str(cut)}) as stream,
    ):
        rest = [int(ident) for _, ident, _ in stream]
    assert rest == [ident for _, ident, _ in events if ident > cut]


def test_recommend_returns_the_finished_study_for_the_same_task(service: Service, completed: dict[str, Any]) -> None:
    task = completed["study"]["spec"]["task"]
    with service.client(service.tokens.bob) as client:
        recs = client.post("/api/v1/configs/recommend", json=task).json()
    assert recs["count"] >= 1
    first = recs["data"][0]
    assert first["exact"] and first["distance"] == 0
    assert first["study_id"] == completed["study"]["id"]


def test_another_users_study_is_404_for_every_verb(service: Service, completed: dict[str, Any]) -> None:
    study_id = completed["study"]["id"]
    paths = [
        ("GET", f"/api/v1/studies/{study_id}"),
        ("GET", f"/api/v1/studies/{study_id}/trials"),
        ("GET", f"/api/v1/studies/{study_id}/best"),
        ("GET", f"/api/v1/studies/{study_id}/events"),
        ("GET", f"/api/v1/studies/{study_id}/trials/1/metrics"),
        ("POST", f"/api/v1/studies/{study_id}/cancel"),
        ("DELETE", f"/api/v1/studies/{study_id}"),
    ]
    with service.client(service.tokens.bob) as bob, service.client(service.tokens.admin) as admin:
        for method, path in paths:
            theirs = bob.request(method, path)
            missing = bob.request(method, path.replace(f"/studies/{study_id}", "/studies/999999"))
            assert theirs.status_code == 404, (method, path, theirs.text)
            assert theirs.json()["detail"][0]["type"] == missing.json()["detail"][0]["type"] == "not_found"
        assert study_id not in [s["id"] for s in bob.get("/api/v1/studies").json()["data"]]
        assert admin.get(f"/api/v1/studies/{study_id}").json()["owner"] == "alice"
        assert study_id in [s["id"] for s in admin.get("/api/v1/studies", params={"limit": 500}).json()["data"]]
    with service.client(service.tokens.alice) as alice:
        assert alice.get(f"/api/v1/studies/{study_id}").json()["status"] == "completed"  # untouched by bob


def test_listing_filters_by_status_and_paginates(service: Service, completed: dict[str, Any]) -> None:
    with service.client(service.tokens.alice) as client:
        done = client.get("/api/v1/studies", params={"status": "completed"}).json()
        page = client.get("/api/v1/studies", params={"limit": 1, "offset": 0}).json()
        beyond = client.get("/api/v1/studies", params={"offset": page["count"]}).json()
    assert done["count"] >= 1 and all(s["status"] == "completed" for s in done["data"])
    assert completed["study"]["id"] in [s["id"] for s in done["data"]]
    assert len(page["data"]) == 1 and page["count"] >= 1
    assert beyond["data"] == [] and beyond["count"] == page["count"]


def test_cancel_stops_a_running_study_within_seconds(service: Service) -> None:
    with service.client(service.tokens.bob) as client:
        study_id = client.post("/api/v1/studies", json=long_spec()).raise_for_status().json()["id"]
        wait_for(client, study_id, lambda s: s["progress"]["trials_running"] >= 1)
        asked = time.monotonic()
        response = client.post(f"/api/v1/studies/{study_id}/cancel")
        assert response.status_code == 200 and response.json()["cancel_requested"]
        study = wait_for(client, study_id, finished, timeout=30)
        took = time.monotonic() - asked
        trials = client.get(f"/api/v1/studies/{study_id}/trials").json()["data"]
    assert study["status"] == "cancelled"
    assert took < 15, f"cancel took {took:.1f} s"
    assert trials and all(t["status"] != "running" for t in trials)
    assert any(t["status"] == "cancelled" and t["steps"] < 50_000 for t in trials)


def test_deleting_a_study_removes_it_and_stops_it(service: Service) -> None:
    with service.client(service.tokens.bob) as client:
        study_id = client.post("/api/v1/studies", json=tiny_spec("bob-doomed")).raise_for_status().json()["id"]
        response = client.delete(f"/api/v1/studies/{study_id}")
        assert response.status_code == 204
        assert client.get(f"/api/v1/studies/{study_id}").status_code == 404
        assert client.get(f"/api/v1/studies/{study_id}/events").status_code == 404
    deadline = time.monotonic() + 10
    while study_id in service.live.state.scheduler.running_ids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert study_id not in service.live.state.scheduler.running_ids()


def test_registry_lists_every_family_and_schedule_with_their_hyperparameters(service: Service) -> None:
    with service.client(service.tokens.bob) as client:
        families = client.get("/api/v1/families").json()
        schedules = client.get("/api/v1/schedules").json()
    adamw = next(f for f in families["data"] if f["name"] == "adamw")
    lr = next(h for h in adamw["hparams"] if h["name"] == "lr")
    assert lr["default"] == 1e-3 and lr["low"] < lr["default"] < lr["high"]
    assert adamw["reference"]
    assert families["count"] == len(families["data"]) >= 4
    assert {"cosine", "wsd", "linear"} <= {s["name"] for s in schedules["data"]}


def test_health_and_readiness_answer_without_a_token(service: Service) -> None:
    with service.client(None) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/api/v1/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "ray": "ok"}


def test_cancelled_and_deleted_studies_give_their_ray_resources_back(service: Service) -> None:
    import ray

    deadline = time.monotonic() + 30
    while service.live.state.scheduler.running_ids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.live.state.scheduler.running_ids() == []
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, f"CPUs still held: {ray.available_resources()}"
        time.sleep(0.2)
