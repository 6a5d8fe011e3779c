"""The status page's data routes (``/web-api``) over HTTP, against the running service and a real study."""

from __future__ import annotations

import yaml
from service.live import streaming

from optforge.spec import StudySpec, TrialConfig
from optforge.storage.repo import studies as studies_repo
from optforge.storage.repo import users as users_repo
from web.conftest import TokenService, WebService


def test_curves_hold_every_trial_and_where_the_stream_resumes(web_service: WebService, completed_study: int) -> None:
    with web_service.client() as client:
        curves = client.get(f"/web-api/studies/{completed_study}/curves").raise_for_status().json()
        trials = client.get(f"/api/v1/studies/{completed_study}/trials").raise_for_status().json()["data"]
        assert [t["id"] for t in curves["trials"]] == [t["id"] for t in trials]
        for trial in curves["trials"]:
            metrics = client.get(f"/api/v1/studies/{completed_study}/trials/{trial['id']}/metrics").json()["data"]
            assert trial["points"] == [[p["step"], p["val_loss"]] for p in metrics if p["val_loss"] is not None]
        assert curves["metric"] == "val_loss" and curves["mode"] == "min"
        # The cursor is the newest event: resuming after it sends nothing, resuming before it sends the last event.
        with streaming(client, f"/api/v1/studies/{completed_study}/events?after={curves['cursor']}") as events:
            assert list(events) == []
        with streaming(client, f"/api/v1/studies/{completed_study}/events?after={curves['cursor'] - 1}") as events:
            assert [kind for kind, _, _ in events] == ["finished"]


def test_analysis_covers_the_completed_search_trials(web_service: WebService, completed_study: int) -> None:
    with web_service.client() as client:
        analysis = client.get(f"/web-api/studies/{completed_study}/analysis").raise_for_status().json()
        trials = client.get(f"/api/v1/studies/{completed_study}/trials?status=completed").json()["data"]
    everything = analysis["scopes"][0]
    assert everything["key"] == "all"
    assert {row["trial_id"] for row in everything["rows"]} == {t["id"] for t in trials if t["phase"] == "search"}
    families = {t["config"]["family"] for t in trials}
    assert ("family" in [d["name"] for d in everything["dimensions"]]) == (len(families) > 1)
    assert {s["key"] for s in analysis["scopes"][1:]} == (
        {f"family:{f}" for f in families} if len(families) > 1 else set()
    )
    assert analysis["transfer"] == []


def test_best_is_the_stored_best_configuration_as_yaml_and_code(web_service: WebService, completed_study: int) -> None:
    with web_service.client() as client:
        view = client.get(f"/web-api/studies/{completed_study}/best").raise_for_status().json()
        best = client.get(f"/api/v1/studies/{completed_study}/best").raise_for_status().json()
    assert view["source"] == "final"
    assert TrialConfig.model_validate(yaml.safe_load(view["yaml"])) == TrialConfig.model_validate(best["config"])
    assert view["snippet"] == best["snippet"]
    assert view["value"] == best["stats"]["mean"]


def test_a_study_without_a_completed_trial_has_no_best_yet(web_service: WebService) -> None:
    with web_service.storage.session() as session:  # cancelled before any scheduler pass could start it
        study = studies_repo.create_study(session, spec=StudySpec(name="never-ran"))
        studies_repo.request_cancel(session, study_id=study.id)
    with web_service.client() as client:
        assert client.get(f"/web-api/studies/{study.id}/best").raise_for_status().json() is None
        curves = client.get(f"/web-api/studies/{study.id}/curves").json()
        assert curves["trials"] == [] and curves["cursor"] == 0
        assert client.get(f"/web-api/studies/{study.id}/analysis").json()["scopes"][0]["rows"] == []


def test_unknown_studies_are_404_on_every_data_route(web_service: WebService) -> None:
    with web_service.client() as client:
        for route in ("curves", "analysis", "best"):
            response = client.get(f"/web-api/studies/999999/{route}")
            assert response.status_code == 404, route
            assert response.json()["detail"][0]["loc"] == ["path", "study_id"]


def test_pages_are_html_and_the_chart_library_is_served_locally(web_service: WebService) -> None:
    with web_service.client() as client:
        for path in ("/", "/studies/1", "/learned"):
            page = client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
            assert "https://" not in page.text  # nothing from a CDN
        library = client.get("/static/vendor/echarts/echarts.min.js")
        assert library.status_code == 200 and len(library.content) > 500_000
        assert library.headers["cache-control"] == "no-cache"
        assert client.get("/studies/0").status_code == 422


def test_another_users_study_is_404_and_no_token_is_401(token_service: TokenService) -> None:
    with token_service.storage.session() as session:
        alice = next(u for u in users_repo.list_users(session) if u.name == "alice")
        study = studies_repo.create_study(session, spec=StudySpec(name="alices"), owner_id=alice.id)
        studies_repo.request_cancel(session, study_id=study.id)
    live = token_service.live
    for route in ("curves", "analysis", "best"):
        path = f"/web-api/studies/{study.id}/{route}"
        with live.client(token_service.alice) as client:
            assert client.get(path).status_code == 200, route
        with live.client(token_service.bob) as client:
            assert client.get(path).status_code == 404, route
        with live.client() as client:
            assert client.get(path).status_code == 401, route
    with live.client() as client:
        assert client.get("/web-api/learned").status_code == 401
        assert client.get("/").status_code == 200  # the page itself holds nothing private
