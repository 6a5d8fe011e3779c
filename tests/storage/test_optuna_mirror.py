"""Mirrored studies open with Optuna's own API and in optuna-dashboard, on the same database URL."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from storage_helpers import BACKENDS, points

from optforge.spec import StudySpec, TrialConfig, TrialResult, TrialStatus
from optforge.storage import Storage, repo
from optforge.storage.optuna_mirror import mirror_study, mirror_study_trials, mirror_trial, optuna_study_name

TRIALS = [
    # key, config, status, objective
    ("a", TrialConfig(family="adamw", hparams={"lr": 1e-3, "weight_decay": 0.1}), TrialStatus.COMPLETED, 0.30),
    (
        "b",
        TrialConfig(family="adamw", hparams={"lr": 0.5}, schedule="wsd"),
        TrialStatus.COMPLETED,
        0.25,
    ),  # lr outside range
    ("c", TrialConfig(family="sgd", hparams={"lr": 0.1, "momentum": 0.9}), TrialStatus.PRUNED, None),
    ("d", TrialConfig(family="adamw", hparams={"lr": 1.0, "weight_decay": 0.0}), TrialStatus.DIVERGED, None),
]


@pytest.fixture(scope="module", params=BACKENDS)
def mirrored(request):
    """A fresh database (Optuna's tables must not leak into other tests) with a study of four finished
    trials, shared by this module's tests, which only add studies of their own to it."""
    url = request.getfixturevalue(f"{request.param}_databases").empty()
    with Storage.open(url) as storage:
        with storage.session() as s:
            study = repo.studies.create_study(s, spec=StudySpec(name="mirror me"))
        mirror_study(storage, study_id=study.id)
        ids = []
        for key, cfg, status, objective in TRIALS:
            with storage.session() as s:
                trial = repo.trials.upsert_trial(s, study_id=study.id, key=key, config=cfg)
                result = TrialResult(
                    status=status, final=objective, curve=points(21), error="x" if objective is None else None
                )
                repo.trials.finish_trial(s, trial_id=trial.id, result=result)
            ids.append(trial.id)
            mirror_trial(storage, trial_id=trial.id)
        with storage.session(readonly=True) as s:
            study = repo.studies.get_study(s, study_id=study.id)
        yield storage, url, study, ids


def test_mirrored_study_loads_with_optuna(mirrored):
    _, url, study, _ = mirrored
    assert study.optuna_study_name == optuna_study_name(study)
    loaded = optuna.load_study(study_name=study.optuna_study_name, storage=url)
    assert loaded.direction == optuna.study.StudyDirection.MINIMIZE  # val_loss
    assert loaded.user_attrs["optforge_study_id"] == study.id
    trials = loaded.get_trials()
    assert [t.state for t in trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    ]
    assert [t.value for t in trials[:2]] == [0.30, 0.25]
    assert trials[0].params == {
        "family": "adamw",
        "schedule": "cosine",
        "mup": False,
        "adamw.lr": 1e-3,
        "adamw.weight_decay": 0.1,
    }
    assert trials[1].params["adamw.lr"] == 0.5 and trials[1].params["schedule"] == "wsd"
    assert trials[2].params["sgd.momentum"] == 0.9
    assert "adamw.weight_decay" not in trials[3].params  # 0 has no place on a log scale; the config keeps it
    assert trials[3].user_attrs["config"]["hparams"]["weight_decay"] == 0.0
    assert trials[3].user_attrs["optforge_status"] == "diverged"
    expected = {p.step: p.val_loss for p in points(21) if p.val_loss is not None}
    assert trials[0].intermediate_values == expected
    assert loaded.best_trial.params["adamw.lr"] == 0.5


def test_mirroring_again_writes_nothing_new(mirrored):
    storage, url, study, ids = mirrored
    first = [mirror_trial(storage, trial_id=i) for i in ids]
    assert mirror_study_trials(storage, study_id=study.id) == 0
    assert [mirror_trial(storage, trial_id=i) for i in ids] == first
    assert mirror_study(storage, study_id=study.id) == study.optuna_study_name
    assert len(optuna.load_study(study_name=study.optuna_study_name, storage=url).trials) == len(TRIALS)


def test_unfinished_trial_is_not_mirrored_until_it_finishes(mirrored):
    storage, url, _, _ = mirrored
    with storage.session() as s:
        study = repo.studies.create_study(s, spec=StudySpec(name="another"))
        trial = repo.trials.upsert_trial(s, study_id=study.id, key="late", config=TrialConfig())
    assert mirror_trial(storage, trial_id=trial.id) is None
    with storage.session() as s:
        repo.trials.finish_trial(s, trial_id=trial.id, result=TrialResult(status=TrialStatus.COMPLETED, final=0.1))
    assert mirror_study_trials(storage, study_id=study.id) == 1
    with storage.session(readonly=True) as s:
        name = repo.studies.get_study(s, study_id=study.id).optuna_study_name
    assert optuna.load_study(study_name=name, storage=url).best_value == 0.1


def test_optuna_dashboard_lists_the_study_with_its_trials(mirrored):
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    _, url, study, _ = mirrored
    app = optuna_dashboard.wsgi(url)

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
        assert status[0].startswith("200"), (path, status, body[:500])
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    [summary] = [x for x in summaries if x["study_name"] == study.optuna_study_name]
    detail = get(f"/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == len(TRIALS)
    assert {p["name"] for p in detail["trials"][0]["params"]} >= {"family", "adamw.lr"}
