"""The studies list, the learned-optimizers page and token mode, in a real headless Chromium."""

from __future__ import annotations

import math

import pytest

from optforge.spec import MetaLossPoint, StudyStatus
from optforge.storage.repo import learned as learned_repo
from web.conftest import PHONE, WebService, screenshot, series_points, web_spec

pytestmark = pytest.mark.browser


def test_studies_list_shows_progress_best_and_family(web_service: WebService, completed_study: int, open_page) -> None:
    page, console = open_page(web_service.url)
    row = page.locator(f'#studies-table tr[data-study-id="{completed_study}"]')
    row.wait_for()
    study = web_service.study(completed_study)
    text = row.inner_text()
    assert "compare-families" in text and "completed" in text
    assert study["best"]["family"] in text
    bar = row.get_by_role("progressbar")
    assert bar.get_attribute("aria-valuenow") == bar.get_attribute("aria-valuemax") == "6"
    screenshot(page, "studies-1280x800")
    row.get_by_role("link", name="compare-families").click()
    page.wait_for_url(f"**/studies/{completed_study}")
    assert console.errors == []


def test_studies_list_follows_a_new_study_without_a_reload(web_service: WebService, open_page) -> None:
    page, console = open_page(web_service.url)
    page.locator("#studies-table tbody tr").first.wait_for()
    page.evaluate("window.loadedOnce = true")
    study_id = web_service.submit(web_spec("appears-live", n_trials=1, steps=20, families=["adamw"]))
    page.locator(f'#studies-table tr[data-study-id="{study_id}"]').wait_for(timeout=15_000)
    assert page.evaluate("window.loadedOnce") is True
    page.get_by_label("Status").select_option("completed")
    page.wait_for_function(f"!document.querySelector('#studies-table tr[data-study-id=\"{study_id}\"]')")
    assert console.errors == []
    with web_service.client() as client:  # it has served its purpose: free the CPUs for the other tests
        client.post(f"/api/v1/studies/{study_id}/cancel").raise_for_status()


def test_studies_list_fits_a_phone(web_service: WebService, completed_study: int, open_page) -> None:
    page, console = open_page(web_service.url, viewport=PHONE)
    page.locator(f'#studies-table tr[data-study-id="{completed_study}"]').wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "studies-phone")
    assert console.errors == []


@pytest.fixture(scope="module")
def meta_run(web_service: WebService) -> int:
    """A meta-training run with a decreasing meta-loss curve and two checkpoints, stored as meta-training stores them."""
    with web_service.storage.session() as session:
        run = learned_repo.create_meta_run(session, name="mulo-test", spec={"tasks": ["mlp"], "meta_steps": 100})
        points = [MetaLossPoint(step=10 * i, meta_loss=0.3 + 2 * math.exp(-i / 6), wall_time=i) for i in range(20)]
        learned_repo.insert_meta_loss_points(session, run_id=run.id, points=points)
        for step in (50, 190):
            learned_repo.save_checkpoint(
                session, name="mulo-test", weights=bytes(64 * step), spec={}, step=step, run_id=run.id
            )
        learned_repo.set_meta_run_status(session, run_id=run.id, status=StudyStatus.COMPLETED)
        return run.id


def test_learned_page_shows_meta_loss_curves_and_checkpoints(web_service: WebService, meta_run: int, open_page) -> None:
    page, console = open_page(f"{web_service.url}/learned")
    card = page.locator(f'article[data-run-id="{meta_run}"]')
    card.wait_for()
    assert card.locator("tbody tr").count() == 2
    assert 20 in series_points(page, "chart-meta")
    screenshot(page, "learned-1280x800")
    assert console.errors == []


# ---- token mode ------------------------------------------------------------------------------------------


def test_token_mode_asks_for_a_token_then_shows_and_streams_the_study(token_service, open_page) -> None:
    live, token = token_service.live, token_service.alice
    with live.client(token) as client:
        spec = web_spec("alice-study", n_trials=1, steps=30, families=["adamw"])
        study_id = client.post("/api/v1/studies", json=spec).raise_for_status().json()["id"]
    page, console = open_page(live.url)
    banner = page.get_by_role("alert")
    assert "API token" in banner.inner_text()  # and no API call was made without one (it would log a 401)

    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Save token").click()
    page.locator(f'#studies-table tr[data-study-id="{study_id}"]').wait_for()
    assert banner.is_hidden()
    assert page.evaluate("localStorage.getItem('optforge.token')") == token

    page.get_by_role("link", name="alice-study").click()
    page.locator("#live-indicator").wait_for(state="visible")  # the event stream opened with the token
    page.wait_for_function("document.getElementById('study-status').textContent === 'completed'", timeout=180_000)
    assert sum(series_points(page, "chart-curves")) > 0
    assert console.errors == []
