"""The study page in a real headless Chromium, against the running service and real tiny studies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from web.conftest import DESKTOP, PHONE, WebService, screenshot, series_points

pytestmark = pytest.mark.browser
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "study.png"


def trial_rows(page: Any) -> int:
    return page.locator("#trials-table tbody tr").count()


def test_completed_study_page_draws_every_panel(web_service: WebService, completed_study: int, open_page) -> None:
    page, console = open_page(f"{web_service.url}/studies/{completed_study}")
    page.wait_for_function("document.querySelectorAll('#trials-table tbody tr').length === 6")
    page.wait_for_function("document.getElementById('best-yaml').textContent.includes('family')")
    page.wait_for_function("document.getElementById('scope-select').options.length > 0")

    curves = series_points(page, "chart-curves")
    with_points = [t for t in web_service.trials(completed_study) if t["points"]]
    assert len(curves) == len(with_points) >= 3 and all(n >= 1 for n in curves), curves  # one line per trial
    assert sum(series_points(page, "chart-families")) >= 2  # the strip of trials and each family's best
    assert sum(series_points(page, "chart-best")) >= 2
    importance = page.evaluate(
        "echarts.getInstanceByDom(document.getElementById('chart-importance')).getOption().series[0].data"
    )
    parallel = series_points(page, "chart-parallel")
    assert importance and parallel and parallel[0] >= 1
    assert "completed" in page.locator("#study-status").inner_text()
    assert "import torch" in page.locator("#best-snippet").inner_text()
    assert page.locator("#cancel-button").is_hidden()  # nothing to cancel

    screenshot(page, "study-1280x800")
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)  # the README's picture: every panel at once
    shutil.copyfile(screenshot(page, "study-1280-full", full_page=True), DOCS_SCREENSHOT)
    assert console.errors == []


def test_log_scale_toggle_and_table_sorting(web_service: WebService, completed_study: int, open_page) -> None:
    page, console = open_page(f"{web_service.url}/studies/{completed_study}")
    page.wait_for_function("document.querySelectorAll('#trials-table tbody tr').length === 6")
    y_axis = "echarts.getInstanceByDom(document.getElementById('chart-curves')).getOption().yAxis[0].type"
    assert page.evaluate(y_axis) == "value"
    page.get_by_label("Log scale").check()
    assert page.evaluate(y_axis) == "log"

    page.get_by_role("button", name="#", exact=True).click()
    numbers = page.locator("#trials-table tbody tr td:first-child").all_inner_texts()
    assert numbers == sorted(numbers, key=int)
    page.get_by_role("button", name="#", exact=True).click()
    assert page.locator("#trials-table tbody tr td:first-child").all_inner_texts() == sorted(
        numbers, key=int, reverse=True
    )
    assert console.errors == []


def test_study_page_fits_a_phone(web_service: WebService, completed_study: int, open_page) -> None:
    page, console = open_page(f"{web_service.url}/studies/{completed_study}", viewport=PHONE)
    page.wait_for_function("document.querySelectorAll('#trials-table tbody tr').length === 6")
    page.wait_for_function("document.getElementById('scope-select').options.length > 0")
    # Nothing wider than the screen: wide tables scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "study-phone")
    screenshot(page, "study-phone-full", full_page=True)
    assert console.errors == []


def test_every_control_has_a_label(web_service: WebService, completed_study: int, open_page) -> None:
    page, _ = open_page(f"{web_service.url}/studies/{completed_study}", viewport=DESKTOP)
    page.wait_for_function("document.querySelectorAll('#trials-table tbody tr').length === 6")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select')].filter((e) => {
            const labelled = e.labels && e.labels.length > 0;
            const named = (e.getAttribute('aria-label') || e.textContent || '').trim() !== '';
            return !(labelled || named);
        }).map((e) => e.outerHTML)"""
    )
    assert unlabelled == []
