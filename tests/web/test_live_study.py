"""A running study in a real headless Chromium: results arrive over the live stream, and cancel stops it.

Both tests share one long study (module scope) in file order: the first watches it, the second cancels it.
Either also works alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from web.conftest import WebService, finished, screenshot, web_spec

pytestmark = pytest.mark.browser

TOTAL_POINTS = """() => echarts.getInstanceByDom(document.getElementById('chart-curves'))
    .getOption().series.reduce((n, s) => n + s.data.length, 0)"""


@pytest.fixture(scope="module")
def running_study(web_service: WebService) -> Iterator[int]:
    """A study far longer than the tests (40 trials of 3000 steps): it is running while they watch."""
    study_id = web_service.submit(web_spec("long-running", n_trials=40, steps=3000, families=["adamw", "lion"]))
    yield study_id
    with web_service.client() as client:  # whatever happened, leave no study running
        client.post(f"/api/v1/studies/{study_id}/cancel")


def test_new_trial_results_appear_without_a_reload(web_service: WebService, running_study: int, open_page) -> None:
    page, console = open_page(f"{web_service.url}/studies/{running_study}")
    page.wait_for_function("document.body.dataset.loaded === 'true'")  # the snapshot is read and drawn
    assert page.locator("#study-status").inner_text() in ("queued", "running")
    page.evaluate("window.sameDocument = true")  # a reload would lose it
    before = page.evaluate(TOTAL_POINTS)
    page.wait_for_function(f"({TOTAL_POINTS})() > {before} + 2", timeout=120_000)
    page.wait_for_function("document.querySelectorAll('#trials-table tbody tr').length >= 1")
    assert page.evaluate("window.sameDocument") is True
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.locator("#live-indicator").is_visible()
    screenshot(page, "study-running-1280x800")
    assert console.errors == []


def test_cancel_button_cancels_a_running_study(web_service: WebService, running_study: int, open_page) -> None:
    web_service.wait(running_study, lambda s: s["status"] == "running")
    page, console = open_page(f"{web_service.url}/studies/{running_study}")
    button = page.get_by_role("button", name="Cancel this study")
    button.wait_for(state="visible")
    page.once("dialog", lambda dialog: dialog.accept())
    button.click()
    page.wait_for_function("document.getElementById('study-status').textContent === 'cancelled'", timeout=60_000)
    assert button.is_hidden()
    assert web_service.wait(running_study, finished)["status"] == "cancelled"
    assert console.errors == []
