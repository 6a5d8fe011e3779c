"""wait()'s progress display: trials done of total, best so far and its family, on rich, tqdm or plain lines."""

from __future__ import annotations

import io

import pytest

from optforge.client._progress import describe, make_progress
from optforge.spec._api import StudyPublic


def snapshot(finished: int, status: str = "running", best: dict | None = None) -> StudyPublic:
    return StudyPublic.model_validate({
        "id": 7, "name": "s", "status": status, "spec": {},
        "progress": {"trials_total": 4, "trials_finished": finished, "trials_running": 1, "fraction": finished / 4},
        "best": best, "created_at": "2026-01-01T00:00:00Z",
    })  # fmt: skip


BEST = {"trial_id": 3, "family": "lion", "schedule": "wsd", "metric": "val_loss", "value": 0.3125}
HISTORY = [snapshot(0), snapshot(1, best=BEST), snapshot(1, best=BEST), snapshot(4, "completed", BEST)]


def test_plain_lines_print_each_change_once() -> None:
    out = io.StringIO()
    display = make_progress(True, out)  # a StringIO is no terminal: plain lines
    for study in HISTORY:
        display.update(study)
    display.close()
    lines = out.getvalue().splitlines()
    assert lines == [describe(HISTORY[0]), describe(HISTORY[1]), describe(HISTORY[3])]
    assert lines[0] == "study 7 running: 0/4 trials, 1 running · no finished trial yet"
    assert lines[-1] == "study 7 completed: 4/4 trials, 1 running · best val_loss 0.3125 (lion + wsd, trial 3)"


@pytest.mark.parametrize("kind", ["rich", "tqdm"])
def test_bars_show_trials_done_the_best_and_its_family(kind: str) -> None:
    pytest.importorskip(kind)
    out = io.StringIO()
    display = make_progress(kind, out)  # type: ignore[arg-type]
    for study in HISTORY:
        display.update(study)
    display.close()
    text = out.getvalue()
    assert "4/4" in text
    assert "lion + wsd" in text and "0.3125" in text


def test_no_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    display = make_progress(False)
    display.update(HISTORY[0])
    display.close()
    assert capsys.readouterr().err == ""
