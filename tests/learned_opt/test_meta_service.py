"""Meta-training as a service job, recorded in storage: submitted over HTTP, run on Ray, shown on the status
page, resumed after its service died, and recorded by ``optforge meta-train --database-url``.

Runs are toy-sized (width 8-16 MLPs, 4-step truncations, 2 particles): a whole one takes about a second.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from service.live import LiveService
from typer.testing import CliRunner

from optforge.cli.app import app as cli_app
from optforge.client import Client, ValidationFailed
from optforge.learned_opt import LearnedWeights, MetaTrainer, MetaTrainSpec
from optforge.service.meta_recorder import StorageMetaRecorder
from optforge.settings import Settings
from optforge.spec import MetaLossPoint, StudyStatus
from optforge.storage.database import Storage
from optforge.storage.repo import learned as learned_repo
from optforge.storage.repo import users as users_repo

from .tiny import TINY as BASE

TINY: dict[str, Any] = {**BASE, "name": "tiny-mulo"}


def tiny(**changes: Any) -> dict[str, Any]:
    """TINY with top-level keys replaced and ``outer`` entries merged (``outer={"steps": 5}``)."""
    spec = copy.deepcopy(TINY)
    outer = changes.pop("outer", {})
    spec.update(changes)
    spec["outer"].update(outer)
    return spec


class Crash(Exception):
    pass


def crash_after(step: int) -> Any:
    def on_step(done: int, total: int, point: MetaLossPoint) -> None:
        if done == step:
            raise Crash

    return on_step


class MetaService:
    def __init__(self, live: LiveService, storage: Storage, alice: str, bob: str, data_dir: Path) -> None:
        self.live, self.storage, self.alice, self.bob, self.data_dir = live, storage, alice, bob, data_dir

    def wait(self, run_id: int, predicate: Any, *, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        with self.live.client(self.alice) as http:
            while time.monotonic() < deadline:
                run = http.get(f"/api/v1/meta-runs/{run_id}").raise_for_status().json()
                if predicate(run):
                    return run
                time.sleep(0.2)
        raise AssertionError(f"meta-run {run_id} did not get there in {timeout} s; last seen: {run}")


def _token(storage: Storage, name: str) -> str:
    with storage.session() as session:
        user = users_repo.create_user(session, name=name)
        return users_repo.issue_token(session, user_id=user.id).token


@pytest.fixture(scope="module")
def meta_service(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaService]:
    """A token-mode service on SQLite (users alice and bob) whose dead workers' leases expire after 3 s."""
    tmp = tmp_path_factory.mktemp("meta-service")
    url = f"sqlite:///{tmp / 'optforge.db'}"
    storage = Storage.open(url)
    alice, bob = _token(storage, "alice"), _token(storage, "bob")
    settings = Settings(
        data_dir=tmp, database_url=url, scheduler_interval_s=0.3, heartbeat_interval_s=0.5, lease_timeout_s=3.0,
        auth_cache_s=0.5, max_width=64, max_steps=1000, max_trials=10,
    )  # fmt: skip
    with LiveService(settings, storage=storage) as live:
        yield MetaService(live, storage, alice, bob, tmp)
    storage.close()


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.1)


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("completed", "failed", "cancelled")


def test_a_submitted_meta_run_completes_with_its_curve_and_weights_in_storage_and_on_the_page(
    meta_service: MetaService,
) -> None:
    with meta_service.live.client() as anonymous:
        refused = anonymous.post("/api/v1/meta-runs", json=tiny())
    assert refused.status_code == 401

    with Client(meta_service.live.url, meta_service.alice) as client:
        submitted = client.submit_meta_run(tiny())
        assert submitted.status == StudyStatus.QUEUED and submitted.total_steps == 2
        run = meta_service.wait(submitted.id, finished)
        listed = client.meta_runs(name="tiny-mulo")
    assert run["status"] == "completed", run["error"]
    assert run["steps_done"] == 2 and run["last_meta_loss"] is not None
    assert submitted.id in [r.id for r in listed]
    # The service keeps the run's files in its own data directory.
    assert (meta_service.data_dir / run["spec"]["output_dir"] / "weights.pt").is_file()

    with meta_service.storage.session(readonly=True) as session:
        stored = learned_repo.get_meta_run(session, run_id=submitted.id)
        checkpoints = learned_repo.list_checkpoints(session, run_id=submitted.id)
        weights = LearnedWeights.from_bytes(learned_repo.load_weights(session, checkpoint_id=checkpoints[-1].id))
    # The evaluation before training, then one point per outer step.
    assert [p.step for p in stored.curve] == [0, 1, 2]
    assert [c.step for c in checkpoints] == [1, 2] == [c["step"] for c in run["checkpoints"]]
    assert weights.info["outer_steps"] == 2 and weights.parametrization == "mup"
    weights.build_network()  # the stored bytes are a whole, loadable update network

    with meta_service.live.client(meta_service.alice) as http:
        page = http.get("/web-api/learned").raise_for_status().json()
    shown = next(r for r in page["runs"] if r["id"] == submitted.id)
    assert [step for step, _ in shown["curve"]] == [0, 1, 2]
    assert [c["step"] for c in shown["checkpoints"]] == [1, 2]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"tasks": {**TINY["tasks"], "widths": [8, 128]}}, ["body", "tasks", "widths", 1]),  # max_width 64
        ({"outer": {**TINY["outer"], "steps": 100_000}}, ["body", "outer", "steps"]),  # inner-step budget
        ({"ray_address": "auto"}, ["body", "ray_address"]),
        ({"outer": {**TINY["outer"], "sigma": -1}}, ["body", "outer", "sigma"]),  # the spec's own validation
        ({"outer": {**TINY["outer"], "stepz": 3}}, ["body", "outer", "stepz"]),
    ],
)
def test_a_spec_the_server_cannot_run_is_refused_with_422_naming_the_field(
    meta_service: MetaService, change: dict[str, Any], loc: list[Any]
) -> None:
    with meta_service.live.client(meta_service.alice) as http:
        response = http.post("/api/v1/meta-runs", json={**TINY, **change})
        runs = http.get("/api/v1/meta-runs").raise_for_status().json()
    assert response.status_code == 422
    assert loc in [d["loc"] for d in response.json()["detail"]]
    assert all(r["spec"].get("ray_address") is None for r in runs["data"])  # nothing was queued


def test_the_sdk_refuses_an_invalid_spec_before_sending_it(meta_service: MetaService) -> None:
    with Client(meta_service.live.url, meta_service.alice) as client, pytest.raises(ValidationFailed) as caught:
        client.submit_meta_run(tiny(outer={"steps": 0}))
    assert caught.value.status_code is None and "outer.steps" in str(caught.value)


def test_a_cancelled_run_stops_its_actor_and_only_its_owner_may_cancel_it(meta_service: MetaService) -> None:
    jobs = meta_service.live.state.scheduler.meta_jobs
    with meta_service.live.client(meta_service.alice) as http:
        run_id = http.post("/api/v1/meta-runs", json=tiny(outer={"steps": 300})).raise_for_status().json()["id"]
        wait_until(lambda: run_id in jobs.running_ids(), "the run's actor to start")
        with meta_service.live.client(meta_service.bob) as other:
            assert other.post(f"/api/v1/meta-runs/{run_id}/cancel").status_code == 403
        cancelled = http.post(f"/api/v1/meta-runs/{run_id}/cancel").raise_for_status().json()
        assert cancelled["status"] == "cancelled"
        wait_until(lambda: run_id not in jobs.running_ids(), "the service to stop the run's actor")
        time.sleep(1.0)  # an actor still alive would record another step within this
        after = http.get(f"/api/v1/meta-runs/{run_id}").raise_for_status().json()
    assert after["status"] == "cancelled" and after["steps_done"] == cancelled["steps_done"] < 300


def test_the_active_run_limit_is_a_429_naming_the_setting(meta_service: MetaService) -> None:
    limit = meta_service.live.settings.max_active_studies_per_user
    carol = _token(meta_service.storage, "carol")  # a user of her own: nobody else's runs count against her
    with meta_service.live.client(carol) as http:
        ids = []
        try:
            for _ in range(limit):  # one runs (the meta-training slot), the rest wait in the queue: all count
                accepted = http.post("/api/v1/meta-runs", json=tiny(name="carol-limit", outer={"steps": 300}))
                assert accepted.status_code == 201, accepted.text
                ids.append(accepted.json()["id"])
            refused = http.post("/api/v1/meta-runs", json=tiny(name="carol-limit"))
        finally:
            for run_id in ids:
                http.post(f"/api/v1/meta-runs/{run_id}/cancel")
        stored = http.get("/api/v1/meta-runs", params={"name": "carol-limit"}).raise_for_status().json()["count"]
        # Once they are cancelled, the limit no longer holds her back.
        again = http.post("/api/v1/meta-runs", json=tiny(outer={"steps": 300})).raise_for_status().json()
        http.post(f"/api/v1/meta-runs/{again['id']}/cancel").raise_for_status()
    assert refused.status_code == 429
    [detail] = refused.json()["detail"]
    assert detail["loc"] == ["body"] and "OPTFORGE_MAX_ACTIVE_STUDIES_PER_USER" in detail["msg"]
    assert stored == limit  # the refused one was not queued


def test_a_run_whose_service_died_is_resumed_from_its_checkpoint_without_duplicate_points(
    meta_service: MetaService,
) -> None:
    """A dead service's attempt got to step 3 with a checkpoint at 2, and its lease stopped being renewed. The
    live service takes the run over once the lease expires and finishes it from the checkpoint."""
    spec = MetaTrainSpec.model_validate(tiny(outer={"steps": 4}, checkpoint_every=2, output_dir="meta-runs/dead"))
    with meta_service.storage.session() as session:  # running without a lease: no service claims it yet
        run = learned_repo.create_meta_run(session, name=spec.name, spec=spec.model_dump(mode="json"))
    local = spec.model_copy(update={"output_dir": str(meta_service.data_dir / "meta-runs" / "dead")})
    with pytest.raises(Crash):
        MetaTrainer(local, callbacks=[StorageMetaRecorder(meta_service.storage, run.id, local)]).run(
            on_step=crash_after(3)
        )
    with meta_service.storage.session() as session:  # one transaction: the dead service's claim, then silence
        learned_repo.set_meta_run_status(session, run_id=run.id, status=StudyStatus.QUEUED)
        lease = learned_repo.claim_next_meta_run(session, worker="dead-service")
        before = learned_repo.get_meta_run(session, run_id=run.id).curve
    assert lease is not None and lease.run_id == run.id
    assert [p.step for p in before] == [0, 1, 2, 3]

    done = meta_service.wait(run.id, finished)
    with meta_service.storage.session(readonly=True) as session:
        after = learned_repo.get_meta_run(session, run_id=run.id).curve
        checkpoints = learned_repo.list_checkpoints(session, run_id=run.id)
    assert done["status"] == "completed", done["error"]
    assert done["resumed"] == 1
    assert [p.step for p in after] == [0, 1, 2, 3, 4]
    assert [c.step for c in checkpoints] == [2, 4]
    # Step 3 was computed again from the step-2 checkpoint, with the same seeds: the same meta-loss.
    assert after[3].meta_loss == pytest.approx(before[3].meta_loss, rel=1e-6)


def test_a_resumed_and_extended_run_records_each_step_once(tmp_path: Path) -> None:
    with Storage.open(f"sqlite:///{tmp_path / 'optforge.db'}") as storage:
        spec = MetaTrainSpec.model_validate(
            tiny(outer={"steps": 4}, checkpoint_every=2, output_dir=str(tmp_path / "r"))
        )
        with storage.session() as session:
            run = learned_repo.create_meta_run(session, name=spec.name, spec=spec.model_dump(mode="json"))
        with pytest.raises(Crash):
            MetaTrainer(spec, callbacks=[StorageMetaRecorder(storage, run.id, spec)]).run(on_step=crash_after(3))
        longer = spec.model_copy(update={"outer": spec.outer.model_copy(update={"steps": 6})})
        MetaTrainer(longer, callbacks=[StorageMetaRecorder(storage, run.id, longer)]).run(resume=True)
        with storage.session(readonly=True) as session:
            curve = learned_repo.get_meta_run(session, run_id=run.id).curve
            checkpoints = learned_repo.list_checkpoints(session, run_id=run.id)
    assert [p.step for p in curve] == [0, 1, 2, 3, 4, 5, 6]
    assert [c.step for c in checkpoints] == [2, 4, 6]


def test_the_cli_records_its_run_in_the_database_and_resume_continues_the_same_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optforge.db'}"
    spec = tmp_path / "meta.yaml"
    spec.write_text(yaml.safe_dump(tiny(output_dir=str(tmp_path / "run"))))
    first = CliRunner().invoke(cli_app, ["meta-train", str(spec), "--database-url", url])
    assert first.exit_code == 0, first.output
    longer = CliRunner().invoke(cli_app, ["meta-train", str(spec), "--database-url", url, "--resume", "--steps", "3"])
    assert longer.exit_code == 0, longer.output
    with Storage.open(url) as storage, storage.session(readonly=True) as session:
        runs = learned_repo.list_meta_runs(session, name="tiny-mulo")
        curve = learned_repo.get_meta_run(session, run_id=runs[0].id).curve
        checkpoints = learned_repo.list_checkpoints(session, run_id=runs[0].id)
    assert len(runs) == 1 and runs[0].status == StudyStatus.COMPLETED
    assert [p.step for p in curve] == [0, 1, 2, 3]
    assert [c.step for c in checkpoints] == [1, 2, 3]
