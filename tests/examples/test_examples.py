"""Every example in examples/ runs at its tiny size against a live service, and does what it says.

One service for the module: ``optforge serve --allow-user-code`` in a subprocess with a temporary SQLite
database, its own local Ray, and examples/ on its PYTHONPATH (for ``my_model:make_model``). Each example
runs as a user runs it: ``python examples/<name>.py --tiny --url URL``. Independent examples run two at
a time (the service runs two studies at once here): own_model alongside builtin_workload, then
train_with_best alongside warm_start, which both need builtin_workload's study.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from optforge.client import Client
from optforge.client.testing import LocalService
from optforge.spec import StudyStatus, TrialStatus

pytest.importorskip("uvicorn")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY_FAMILIES = {"adamw", "sgd"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    with LocalService(
        data_dir=tmp_path_factory.mktemp("examples-service"),
        allow_user_code=True,
        python_path=[EXAMPLES],
        env={
            "OPTFORGE_RAY_CPUS": "2",
            "OPTFORGE_SCHEDULER_INTERVAL_S": "0.2",
            "OPTFORGE_MAX_RUNNING_STUDIES_PER_USER": "2",  # open mode: every study has the same (no) owner
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(service: LocalService) -> Iterator[Client]:
    with service.client() as opened:
        yield opened


class Example:
    """``python examples/<name> --tiny --url URL`` started now; ``output()`` waits for it and checks it passed."""

    def __init__(self, service: LocalService, name: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("OPTFORGE_URL", "OPTFORGE_TOKEN", "RAY_ADDRESS")}
        self.name, self.service = name, service
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), "--tiny", "--url", service.url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=EXAMPLES.parent,
        )
        self._stdout: str | None = None

    def output(self) -> str:
        if self._stdout is None:
            out, err = self.process.communicate(timeout=300)
            assert self.process.returncode == 0, (
                f"{self.name} failed:\n{out}\n{err}\n--- service log ---\n{self.service.log_tail()}"
            )
            self._stdout = out
        return self._stdout

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def own_model_run(service: LocalService) -> Iterator[Example]:
    example = Example(service, "own_model.py")
    yield example
    example.kill()


def study_id(output: str) -> int:
    match = re.search(r"best of study (\d+):", output)
    assert match, output
    return int(match.group(1))


@pytest.fixture(scope="module")
def builtin_run(service: LocalService, own_model_run: Example) -> tuple[str, int]:
    # own_model_run: started first, so it runs alongside this one
    output = Example(service, "builtin_workload.py").output()
    return output, study_id(output)


@pytest.fixture(scope="module")
def train_run(service: LocalService, builtin_run: tuple[str, int]) -> Iterator[Example]:
    example = Example(service, "train_with_best.py", "--study", str(builtin_run[1]))
    yield example
    example.kill()


def test_builtin_workload_example_tunes_digits_and_prints_the_code(
    client: Client, builtin_run: tuple[str, int]
) -> None:
    output, sid = builtin_run
    study = client.study(sid)
    assert study.status == StudyStatus.COMPLETED
    assert study.spec.task.data.name == "digits" and study.progress.trials_finished == 1
    best = study.best()
    assert f"best of study {sid}: {best.summary()}" in output
    assert best.snippet.strip() in output  # the ready-to-paste code, printed whole


def test_own_model_example_tunes_the_users_model_through_its_entry_point(
    client: Client, own_model_run: Example
) -> None:
    sid = study_id(own_model_run.output())
    study = client.study(sid)
    assert study.status == StudyStatus.COMPLETED
    assert study.spec.task.model.entrypoint == "my_model:make_model"
    trials = study.trials()
    assert {t.status for t in trials} == {TrialStatus.COMPLETED}  # the service imported and trained my_model
    assert study.best().config.family in TINY_FAMILIES


def test_warm_start_example_evaluates_the_recommended_configurations_first(
    service: LocalService, client: Client, builtin_run: tuple[str, int], train_run: Example
) -> None:
    # train_run: train_with_best.py is already running alongside (it starts no study)
    _, builtin_id = builtin_run
    task = client.study(builtin_id).spec.task
    recommended = client.recommend(task, limit=3)  # what the example is about to be told
    assert recommended and recommended[0].study_id == builtin_id
    output = Example(service, "warm_start.py").output()
    assert f"study {builtin_id} (same task)" in output
    warm = client.study(study_id(output))
    assert warm.spec.search.initial_configs == [r.config for r in recommended]
    # trials may report in either order (two run at once): compare the sets
    tried = sorted(t.config.model_dump_json() for t in warm.trials())
    expected = [r.config.model_dump_json() for r in recommended[: warm.progress.trials_total]]
    assert set(expected) <= set(tried)


def test_train_with_best_example_trains_a_users_model_with_the_tuned_optimizer(
    client: Client, builtin_run: tuple[str, int], train_run: Example
) -> None:
    _, sid = builtin_run
    best = client.best(sid)
    output = train_run.output()
    assert f"using the best of study {sid}: {best.summary()}" in output
    losses = [float(x) for x in re.findall(r"train loss (\S+)", output)]
    accuracies = [float(x) for x in re.findall(r"val accuracy (\S+)", output)]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert accuracies[-1] > accuracies[0]
