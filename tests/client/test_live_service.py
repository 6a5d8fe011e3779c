"""The SDK and the CLI against a live service: ``optforge serve`` under uvicorn in a subprocess, with tokens,
its own local Ray and a SQLite database. Two users: alice follows her study's live stream through the SDK
while bob's ``optforge submit --wait`` runs in another process; then the CLI reads bob's results."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from optforge.cli.app import app
from optforge.client import Best, Client, NotFound, Unauthorized
from optforge.client.testing import LocalService
from optforge.spec import StudyStatus
from optforge.spec._api import BestPublic

pytest.importorskip("uvicorn")

MAX_TRIALS = 10
FAMILIES = ["adamw", "sgd"]
SPEC = {
    "name": "sdk-live",
    "task": {"model": {"name": "mlp", "width": 8, "depth": 1}, "data": {"name": "iris"}, "batch_size": 16,
             "steps": 20, "eval_every": 10},
    # One trial (what is tested is the plumbing), with an LR range where neither family diverges on this task.
    "search": {"n_trials": 1, "families": FAMILIES, "schedules": ["cosine"], "early_stopping": "none",
               "warm_start": False, "ranges": {"lr": [0.001, 0.03]}},
}  # fmt: skip


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def create_token(database_url: str, user: str) -> str:
    code, out, err = invoke("token", "create", "--user", user, "--database-url", database_url, "--json")
    assert code == 0, err
    return json.loads(out)["token"]


@dataclass
class Live:
    service: LocalService
    alice: str
    bob: str

    def cli(self, *args: str, token: str | None = None) -> tuple[int, str, str]:
        return invoke(*args, "--url", self.service.url, "--token", token or self.bob)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    service = LocalService(
        data_dir=tmp_path_factory.mktemp("live-service"),
        env={
            "OPTFORGE_RAY_CPUS": "2",
            "OPTFORGE_MAX_TRIALS": str(MAX_TRIALS),
            "OPTFORGE_SCHEDULER_INTERVAL_S": "0.2",
            "OPTFORGE_STREAM_POLL_INTERVAL_S": "0.2",
        },
    )
    # Tokens first: the service then requires one from its very first request.
    alice, bob = create_token(service.database_url, "alice"), create_token(service.database_url, "bob")
    with service:
        yield Live(service, alice, bob)


class CliWait:
    """``optforge submit SPEC --wait`` for bob, in its own process, started before alice's study."""

    def __init__(self, live: Live, spec: Path) -> None:
        command = [sys.executable, "-m", "optforge.cli", "submit", str(spec), "--wait"]
        command += ["--url", live.service.url, "--token", live.bob]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._done: tuple[int, str, str] | None = None

    def result(self) -> tuple[int, str, str]:
        if self._done is None:
            out, err = self.process.communicate(timeout=300)
            self._done = (self.process.returncode, out, err)
        return self._done


@pytest.fixture(scope="module")
def bobs_cli_wait(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWait]:
    spec = tmp_path_factory.mktemp("bob") / "bob.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": "bob-cli"}))
    waiting = CliWait(live, spec)
    yield waiting
    if waiting.process.poll() is None:
        waiting.process.kill()
        waiting.process.wait()


@pytest.fixture(scope="module")
def bobs_study(live: Live, bobs_cli_wait: CliWait) -> dict:
    """Bob's study and its best, as the API's JSON, once his ``submit --wait`` has returned."""
    code, _, err = bobs_cli_wait.result()
    assert code == 0, err
    with Client(live.service.url, live.bob) as client:
        [study] = [s for s in client.studies() if s.name == "bob-cli"]
        return {"study": study.data.model_dump(mode="json"), "best": study.best().model_dump(mode="json")}


def test_cli_submit_prints_the_id_and_cancel_stops_a_queued_study(
    live: Live, bobs_cli_wait: CliWait, tmp_path: Path
) -> None:
    with Client(live.service.url, live.bob) as client:
        deadline = time.monotonic() + 60
        while not client.studies() and time.monotonic() < deadline:  # bob's --wait study goes first...
            time.sleep(0.2)
        spec = tmp_path / "queued.yaml"
        spec.write_text(yaml.safe_dump(SPEC))
        code, out, _ = live.cli("submit", str(spec), "--name", "bob-queued")
        assert code == 0
        match = re.search(r"submitted study (\d+) \('bob-queued', 1 trial, queued\)", out)
        assert match, out
        queued = match.group(1)
        assert f"optforge status {queued}" in out
        code, out, _ = live.cli("cancel", queued)  # ...so this one waits in the queue (one running per user)
        assert code == 0
        assert f"study {queued} cancelled" in out or f"cancel requested: study {queued} is running" in out
        assert client.study(int(queued)).wait(progress=False, timeout=60).status == StudyStatus.CANCELLED


def test_events_arrive_live_while_the_study_runs(live: Live, bobs_cli_wait: CliWait) -> None:
    # bobs_cli_wait: bob's CLI study is already running in another process, alongside this one (two drivers
    # in one Ray job: CI caught alice's trial training bob's 20-step task, see tests/search/test_concurrent_studies).
    # Alice's study is far longer than the test (100 000 steps, minutes of training): it is still running when
    # its first result arrives whatever the machine's speed, and the test ends it by cancelling it. Bob's study
    # covers completion and the best configuration.
    with Client(live.service.url, live.alice) as client:
        study = client.submit({**SPEC, "task": {**SPEC["task"], "steps": 100_000, "eval_every": 100}})
        kinds, first_result, status_at_first_result, seen = [], None, None, []
        for event in study.events():
            kinds.append(event.kind)
            seen.append((time.time(), event))
            if event.kind == "trial_result" and first_result is None:
                first_result, status_at_first_result = event, study.refresh().status
                study.cancel()
        events = "\n".join(f"{t:.3f} {e}" for t, e in seen)
        assert first_result is not None and first_result.data["point"]["step"] == 100, events  # her own task
        assert status_at_first_result == StudyStatus.RUNNING, events  # streamed while running, not replayed after
        assert kinds[0] == "started" and kinds[-1] == "finished"  # the stream ends when the study does
        assert kinds.count("trial_finished") == 1
        assert study.refresh().status == StudyStatus.CANCELLED


def test_cli_submit_wait_follows_the_study_and_prints_its_best(bobs_cli_wait: CliWait, bobs_study: dict) -> None:
    _, printed, progress = bobs_cli_wait.result()
    study = bobs_study["study"]
    assert study["status"] == "completed"
    assert f"study {study['id']} completed: 1/1 trials" in progress  # the progress lines on stderr
    best = Best.model_validate(bobs_study["best"])
    assert best.config.family in FAMILIES
    assert f"study {study['id']}: bob-cli" in printed  # the study's table
    assert f"best: {best.summary()}" in printed
    assert best.snippet.strip() in printed  # and the code, whole


def test_a_request_without_a_token_is_unauthorized_naming_the_header(live: Live) -> None:
    with Client(live.service.url, token=None) as client, pytest.raises(Unauthorized) as info:
        client.studies()
    assert info.value.errors[0][0] == "header.authorization"
    assert "optforge token create" in info.value.errors[0][1]


def test_users_see_only_their_own_studies(live: Live, bobs_study: dict) -> None:
    bob_id = bobs_study["study"]["id"]
    with Client(live.service.url, live.alice) as alice:
        assert bob_id not in [s.id for s in alice.studies()]
        with pytest.raises(NotFound):
            alice.study(bob_id)
        with pytest.raises(NotFound):
            alice.cancel(bob_id)
    with Client(live.service.url, live.alice) as alice:
        alice_ids = {s.id for s in alice.studies()}
    code, out, _ = live.cli("list", "--json")
    assert code == 0
    bob_ids = {s["id"] for s in json.loads(out)["data"]}
    assert bob_id in bob_ids and not bob_ids & alice_ids


def test_cli_list_and_status_show_the_study(live: Live, bobs_study: dict) -> None:
    bob_id = bobs_study["study"]["id"]
    code, out, _ = live.cli("list")
    assert code == 0 and "bob-cli" in out and "completed" in out
    code, out, _ = live.cli("status", str(bob_id))
    assert code == 0
    assert "completed" in out and "1/1 finished" in out and bobs_study["best"]["config"]["family"] in out
    code, out, _ = live.cli("status", str(bob_id), "--json")
    assert json.loads(out)["id"] == bob_id
    code, out, _ = live.cli("status")
    assert code == 0 and f"service {live.service.url}: ok" in out


def test_cli_best_prints_yaml_json_and_python(live: Live, bobs_study: dict) -> None:
    bob_id = str(bobs_study["study"]["id"])
    family = bobs_study["best"]["config"]["family"]
    code, out, _ = live.cli("best", bob_id)  # yaml by default
    assert code == 0 and out.startswith(f"# study {bob_id}, rank 0: {family} + cosine")
    assert yaml.safe_load(out)["config"]["family"] == family
    code, out, _ = live.cli("best", bob_id, "--format", "json")
    assert BestPublic.model_validate_json(out).config.family == family
    code, out, _ = live.cli("best", bob_id, "--format", "python")
    assert code == 0
    compile(out, "snippet.py", "exec")  # ready to paste: valid Python
    assert "optimizer =" in out and "scheduler =" in out


def test_cli_cancel_leaves_a_finished_study_as_it_is(live: Live, bobs_study: dict) -> None:
    bob_id = bobs_study["study"]["id"]
    code, out, _ = live.cli("cancel", str(bob_id))
    assert code == 0 and f"study {bob_id} had already completed: nothing to cancel" in out


def test_cli_bad_input_exits_2_naming_the_field(live: Live, tmp_path: Path) -> None:
    code, _, err = live.cli("submit", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no such spec file" in err
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({**SPEC, "search": {"n_trialz": 2}}))
    code, _, err = live.cli("submit", str(typo))
    assert code == 2 and "search.n_trialz" in err
    code, _, err = invoke("list", "--url", "localhost:8000")
    assert code == 2 and "--url" in err


def test_cli_service_refusals_exit_1_with_its_field_messages(live: Live, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({**SPEC, "search": {**SPEC["search"], "n_trials": MAX_TRIALS + 1}}))
    code, _, err = live.cli("submit", str(big))
    assert code == 1
    assert "422" in err and "search.n_trials" in err and "OPTFORGE_MAX_TRIALS" in err
    code, _, err = live.cli("list", token="not-a-token")
    assert code == 1 and "401" in err and "unknown, revoked or expired API token" in err
    code, _, err = live.cli("best", "987654")
    assert code == 1 and "no study with id 987654" in err
