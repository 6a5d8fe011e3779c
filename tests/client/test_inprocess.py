"""The SDK against the real app in-process: Starlette's TestClient under ``Client``, httpx's ASGITransport
under ``AsyncClient``. Real Ray (the session's) and a real SQLite database; one tiny study runs to the end."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from optforge.client import (
    AsyncClient,
    Client,
    Forbidden,
    NotFound,
    NotReady,
    Study,
    ValidationFailed,
)
from optforge.spec import StudyStatus, TrialStatus

pytest.importorskip("fastapi")
from starlette.testclient import TestClient

from optforge.service import create_app
from optforge.settings import Settings

BASE = "http://testserver"
TASK = {
    "model": {"name": "mlp", "width": 8, "depth": 1},
    "data": {"name": "iris"},
    "batch_size": 16,
    "steps": 20,
    "eval_every": 10,
}
FAMILIES = ["adamw", "sgd"]
SPEC = {
    "name": "sdk-inprocess",
    "task": TASK,
    # An LR range where neither family diverges on this task, so the tiny study always has a best.
    "search": {"n_trials": 2, "families": FAMILIES, "schedules": ["cosine"], "early_stopping": "none",
               "warm_start": False, "ranges": {"lr": [0.001, 0.03]}},
}  # fmt: skip
MAX_TRIALS = 50


@pytest.fixture(scope="module")
def app_client(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, TestClient]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("service"),
        database_url=None,
        max_trials=MAX_TRIALS,
        scheduler_interval_s=0.2,
        stream_poll_interval_s=0.1,
    )
    app = create_app(settings)
    with TestClient(app, base_url=BASE) as http:  # runs the lifespan: storage, scheduler
        yield app, http


@pytest.fixture(scope="module")
def client(app_client: tuple[object, TestClient]) -> Client:
    return Client(BASE, http_client=app_client[1])


@pytest.fixture(scope="module")
def submitted(client: Client) -> Study:
    """The tiny study, submitted. While it runs, studies submitted next stay queued (one running study per
    user), so the tests that cancel or delete them run first and never pay for starting a driver."""
    return client.submit(SPEC)


@pytest.fixture(scope="module")
def finished(submitted: Study) -> tuple[Study, str]:
    """The tiny study, waited for; and what wait()'s progress printed (plain lines: stderr is no terminal)."""
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        submitted.wait(progress=True, timeout=240, poll_interval=0.2)
    return submitted, out.getvalue()


def test_cancelling_stops_a_study_that_then_has_no_best(client: Client, submitted: Study) -> None:
    study = client.submit({**SPEC, "name": "to-cancel"})
    with pytest.raises(NotReady):
        study.best()
    study.cancel()
    assert study.data.cancel_requested or study.status == StudyStatus.CANCELLED
    study.wait(progress=False, timeout=60, poll_interval=0.2)
    assert study.status == StudyStatus.CANCELLED
    assert [e.kind for e in study.events()][-1] == "finished"


def test_a_spec_file_path_is_submitted_like_a_dict_and_deleted(
    client: Client, submitted: Study, tmp_path: Path
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "name": "from-a-file", "search": {**SPEC["search"], "n_trials": 3}}))
    study = client.submit(path)
    try:
        assert study.name == "from-a-file" and study.progress.trials_total == 3
    finally:
        study.delete()
    with pytest.raises(NotFound):
        study.refresh()


def test_the_async_client_submits_and_cancels_through_asgi(
    app_client: tuple[object, TestClient], submitted: Study
) -> None:
    async def run() -> tuple[StudyStatus, list[str]]:
        async with AsyncClient(BASE, transport=httpx.ASGITransport(app=app_client[0])) as aclient:  # type: ignore[arg-type]
            study = await aclient.submit({**SPEC, "name": "async-cancel"})
            with pytest.raises(NotReady):
                await study.best()
            await study.cancel()
            await study.wait(progress=False, timeout=60, poll_interval=0.2)
            return study.status, [str(e.kind) async for e in study.events()]

    status, kinds = asyncio.run(run())
    assert status == StudyStatus.CANCELLED
    assert kinds[-1] == "finished"


def test_wait_shows_trials_done_and_the_best_so_far_with_its_family(finished: tuple[Study, str]) -> None:
    study, printed = finished
    assert study.status == StudyStatus.COMPLETED
    lines = printed.strip().splitlines()
    assert all(line.startswith(f"study {study.id} ") for line in lines)
    last = lines[-1]
    assert f"study {study.id} completed: 2/2 trials" in last
    best = study.best_so_far
    assert best is not None and best.family in FAMILIES
    assert f"({best.family} + cosine, trial {best.trial_id})" in last


def test_events_replay_the_study_in_order_and_resume_after_an_id(client: Client, finished: tuple[Study, str]) -> None:
    study, _ = finished
    events = list(study.events())
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("trial_finished") == 2
    middle = ids[len(ids) // 2]
    assert [e.id for e in client.events(study.id, after=middle)] == [i for i in ids if i > middle]


def test_trials_and_their_curves_are_listed(finished: tuple[Study, str]) -> None:
    study, _ = finished
    trials = study.trials()
    assert len(trials) == 2
    assert all(t.status.finished for t in trials)
    assert {t.config.family for t in trials} <= set(FAMILIES)
    done = next(t for t in trials if t.status == TrialStatus.COMPLETED)
    curve = study.metrics(done.id)
    assert [p.step for p in curve] == sorted(p.step for p in curve) and curve[-1].step == TASK["steps"]
    assert curve[-1].val_loss == pytest.approx(done.final)
    assert study.trials(status="failed") == []


def test_best_is_the_trial_with_the_lowest_final_loss(finished: tuple[Study, str]) -> None:
    study, _ = finished
    best = study.best()
    winner = min((t for t in study.trials() if t.status == TrialStatus.COMPLETED), key=lambda t: t.final)
    assert best.config == winner.config
    assert best.stats.mean == pytest.approx(winner.final)
    assert best.mode == "min" and best.metric == "val_loss"
    assert "optimizer" in best.snippet and "scheduler" in best.snippet
    assert best.summary().startswith(f"{winner.config.family} + cosine: val_loss")


def test_best_build_returns_a_torch_optimizer_and_scheduler_that_train_a_users_model(
    finished: tuple[Study, str],
) -> None:
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_iris

    best = finished[0].best()
    features, labels = load_iris(return_X_y=True)
    x = torch.tensor((features - features.mean(0)) / features.std(0), dtype=torch.float32)
    y = torch.tensor(labels)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))  # like the task
    optimizer, scheduler = best.build(model, total_steps=40)
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert optimizer.param_groups[0]["initial_lr"] == pytest.approx(best.config.hparams["lr"])
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # the schedule ran over the 40 steps asked for: cosine ends near its floor, far below the peak
    assert scheduler.get_last_lr()[0] < 0.5 * best.config.hparams["lr"]


def test_recommend_finds_the_finished_study_for_the_same_task(client: Client, finished: tuple[Study, str]) -> None:
    study, _ = finished
    recommendations = client.recommend(TASK)
    assert recommendations, "the finished study's configurations should be recommended"
    top = recommendations[0]
    assert top.exact and top.study_id == study.id
    assert top.config == study.best().config


def test_listing_filters_by_status(client: Client, finished: tuple[Study, str]) -> None:
    study, _ = finished
    completed = client.studies(status="completed")
    assert study.id in [s.id for s in completed]
    assert completed.count >= 1
    assert study.id not in [s.id for s in client.studies(status=StudyStatus.QUEUED)]


def test_the_registry_lists_families_and_schedules_with_their_ranges(client: Client) -> None:
    families = {f.name: f for f in client.families()}
    assert {"adamw", "sgd", "muon"} <= families.keys()
    lr = families["adamw"].hparam("lr")
    assert lr.low is not None and lr.low < lr.default < lr.high
    assert math.isinf(lr.valid[1])  # an unbounded interval survives the trip through JSON
    assert "cosine" in {s.name for s in client.schedules()}


def test_a_spec_beyond_the_servers_limits_is_refused_naming_the_field_and_the_setting(client: Client) -> None:
    with pytest.raises(ValidationFailed) as info:
        client.submit({**SPEC, "search": {**SPEC["search"], "n_trials": MAX_TRIALS + 1}})
    assert info.value.status_code == 422
    [(field, message)] = info.value.errors
    assert field == "search.n_trials"
    assert "OPTFORGE_MAX_TRIALS" in message and str(MAX_TRIALS) in message


def test_user_code_is_refused_by_a_server_that_runs_none(client: Client) -> None:
    spec = {**SPEC, "task": {**TASK, "model": {"entrypoint": "my_model:make_model"}}}
    with pytest.raises(Forbidden) as info:
        client.submit(spec)
    assert info.value.errors[0][0] == "task.model.entrypoint"
    assert "--allow-user-code" in info.value.errors[0][1]


def test_an_unknown_study_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound, match="no study with id 987654"):
        client.study(987654)


def test_the_async_client_reads_what_the_sync_client_reads(
    app_client: tuple[object, TestClient], finished: tuple[Study, str]
) -> None:
    study, _ = finished

    async def run() -> dict[str, object]:
        async with AsyncClient(BASE, transport=httpx.ASGITransport(app=app_client[0])) as aclient:  # type: ignore[arg-type]
            same = await aclient.study(study.id)
            with pytest.raises(NotFound):
                await aclient.study(987654)
            return {
                "data": same.data,
                "best": await same.best(),
                "trials": await same.trials(),
                "events": [e.id async for e in same.events()],
                "health": (await aclient.health()).status,
                "listed": [s.id for s in await aclient.studies(status="completed")],
                "recommended": [r.study_id for r in await aclient.recommend(TASK)],
                "families": len(await aclient.families()),
            }

    seen = asyncio.run(run())
    assert seen["data"] == study.refresh().data
    assert seen["best"] == study.best()
    assert seen["trials"] == study.trials()
    assert seen["events"] == [e.id for e in study.events()]
    assert seen["health"] == "ok"
    assert study.id in seen["listed"]  # type: ignore[operator]
    assert study.id in seen["recommended"]  # type: ignore[operator]
    assert seen["families"] == len(study.client.families())
