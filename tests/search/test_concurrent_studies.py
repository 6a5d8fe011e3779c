"""Studies that run at the same time in one Ray job each train their own task.

The service runs each study's driver as a Ray actor of one job, and Tune registers trainables in a registry
keyed by job and name. When every study's trainable had one name, a study that registered its trainable
while another was about to start a trial made that trial train the wrong task (CI saw a 100 000-step study
finish after 20 steps: the other study's). Two ``run_study`` threads of this process are two drivers of one
job, and the interleaving is forced rather than hoped for. Experiments saved under the old shared name resume.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest

from optforge.search import SearchSpace, run_study, runner
from optforge.search.runner import trainable_name
from optforge.spec import StudyEvent, StudyEventKind, StudySpec

pytestmark = pytest.mark.usefixtures("ray_session")

MODEL = {"name": "mlp", "width": 16}
SEARCH = {"n_trials": 1, "families": ["adamw"], "schedules": ["constant"], "early_stopping": "none"}


class Gate:
    """A ``threading.Event`` that Tune can pickle with the searcher it is captured in (a copy starts open:
    only the live searcher in this process ever waits on it)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.event = threading.Event()
        self.event.set()


def spec(name: str, steps: int, eval_every: int) -> StudySpec:
    task = {"model": MODEL, "data": {"name": "iris"}, "steps": steps, "eval_every": eval_every}
    return StudySpec.model_validate({"name": name, "task": task, "search": SEARCH})


@pytest.mark.filterwarnings("ignore:Define-by-run function")  # the hold below is what takes seconds
def test_two_studies_started_together_each_train_their_own_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_holding, b_running = Gate(), Gate()
    define_by_run = SearchSpace.define_by_run

    def held_for_a(self: SearchSpace, trial: optuna.Trial) -> dict[str, Any]:
        if threading.current_thread().name == "study-a":
            # Study A's Tuner has registered its trainable and asks for its first configuration; its trial is
            # created after this returns. Meanwhile study B starts, registers its own trainable, and trains.
            a_holding.event.set()
            b_running.event.wait(timeout=120)
        return define_by_run(self, trial)

    monkeypatch.setattr(SearchSpace, "define_by_run", held_for_a)

    def on_b(event: StudyEvent) -> None:
        if event.kind == StudyEventKind.TRIAL_RESULT:
            b_running.event.set()

    studies = {
        "study-a": (spec("a", steps=30, eval_every=10), None),
        "study-b": (spec("b", steps=60, eval_every=15), on_b),
    }
    results: dict[str, Any] = {}

    def run(name: str) -> None:
        study, reporter = studies[name]
        try:
            results[name] = run_study(study, reporter=reporter, storage_path=tmp_path / name)
        except Exception as exc:  # re-raised below, in the test's thread
            results[name] = exc

    a, b = (threading.Thread(target=run, args=(name,), name=name) for name in studies)
    a.start()
    # B starts once A has registered (Ray's registry is not thread-safe: two registrations at one instant in
    # one process can fail, which the service's drivers, separate processes, never meet).
    assert a_holding.event.wait(timeout=120), results
    b.start()
    for thread in (a, b):
        thread.join(timeout=300)
    assert b_running.event.is_set(), results
    for name, (study, _) in studies.items():
        result = results[name]
        assert not isinstance(result, Exception), f"{name}: {result!r}"
        [trial] = result.trials
        assert trial.result.steps == study.task.steps, f"{name} trained another study's task"
        every = study.task.eval_every
        assert [p.step for p in trial.result.curve] == list(range(every, study.task.steps + 1, every))


def test_each_experiment_directory_has_its_own_stable_trainable_name(tmp_path: Path) -> None:
    a, b = str(tmp_path / "study-1" / "x"), str(tmp_path / "study-2" / "x")
    assert trainable_name(a) != trainable_name(b)  # two studies of one service: the same spec name, two dirs
    assert trainable_name(a) == trainable_name(str(tmp_path / "study-1" / "." / "x"))  # what restore needs


class DriverCrash(Exception):
    """Stands in for the driver process dying mid-study."""


# The trial running at the crash is run again from its start and reports its first steps a second time;
# Optuna keeps the first report of each step and warns about the repeats.
@pytest.mark.filterwarnings("ignore:The reported value is ignored")
def test_a_study_saved_under_the_old_shared_name_still_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")  # saved at every loop turn: the crash finds a trial saved
    study = spec("upgraded", steps=30, eval_every=10).model_copy(deep=True)
    study.search.n_trials, study.search.max_concurrent = 3, 1
    finished: list[str] = []

    def crash() -> bool:
        if finished:
            raise DriverCrash
        return False

    def on_event(event: StudyEvent) -> None:
        if event.kind == StudyEventKind.TRIAL_FINISHED:
            finished.append(event.trial_id or "")

    with monkeypatch.context() as old:  # an optforge from before per-experiment names saved this experiment
        old.setattr(runner, "trainable_name", lambda experiment: runner.LEGACY_TRAINABLE_NAME)
        with pytest.raises(DriverCrash):
            run_study(study, reporter=on_event, should_stop=crash, storage_path=tmp_path)
    with caplog.at_level(logging.WARNING, logger=runner.__name__):
        resumed = run_study(study, storage_path=tmp_path, resume=True)
    assert resumed.status == "completed"
    assert len(resumed.trials) == 3 and all(t.result.steps == 30 for t in resumed.trials)
    assert "shared trainable name" in caplog.text
