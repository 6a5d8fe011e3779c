"""The progress display of ``Study.wait(progress=True)``: trials done of total, best so far, its family.

rich or tqdm draw a bar when they are installed and the output is a terminal (or a notebook); neither
is a dependency of the SDK. Otherwise, e.g. in CI logs, one plain line is printed each time the
progress changes. Everything goes to stderr, so a script's stdout stays clean.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, Literal, Protocol, TextIO

from optforge.spec._api import StudyPublic

ProgressKind = Literal["auto", "rich", "tqdm", "lines"]


def describe_best(study: StudyPublic) -> str:
    best = study.best
    if best is None:
        return "no finished trial yet"
    return f"best {best.metric} {best.value:.4g} ({best.family} + {best.schedule}, trial {best.trial_id})"


def describe(study: StudyPublic) -> str:
    """``study 3 running: 2/8 trials · best val_loss 0.352 (adamw + cosine, trial 5)``."""
    p = study.progress
    running = f", {p.trials_running} running" if p.trials_running else ""
    return (
        f"study {study.id} {study.status.value}: {p.trials_finished}/{p.trials_total} trials{running} · "
        f"{describe_best(study)}"
    )


class ProgressDisplay(Protocol):
    def update(self, study: StudyPublic) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def update(self, study: StudyPublic) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """One line per change, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = ""

    def update(self, study: StudyPublic) -> None:
        line = describe(study)
        if line != self.last:
            print(line, file=self.stream, flush=True)
            self.last = line

    def close(self) -> None:
        pass


class RichProgress:
    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials · {task.fields[best]}"),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self.task: Any = None
        self.progress.start()

    def update(self, study: StudyPublic) -> None:
        p = study.progress
        description = f"study {study.id} [{study.status.value}]"
        if self.task is None:
            self.task = self.progress.add_task(description, total=p.trials_total or None, best="")
        self.progress.update(
            self.task, description=description, completed=p.trials_finished, total=p.trials_total or None,
            best=describe_best(study),
        )  # fmt: skip

    def close(self) -> None:
        self.progress.stop()


class TqdmProgress:
    def __init__(self, stream: TextIO) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=0, unit="trial", file=stream, dynamic_ncols=True)

    def update(self, study: StudyPublic) -> None:
        p = study.progress
        self.bar.set_description(f"study {study.id} [{study.status.value}]", refresh=False)
        self.bar.total = p.trials_total
        self.bar.n = p.trials_finished
        self.bar.set_postfix_str(describe_best(study), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _interactive(stream: TextIO) -> bool:
    if "ipykernel" in sys.modules:  # a notebook: not a tty, but both bars render there
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def make_progress(progress: bool | ProgressKind, stream: TextIO | None = None) -> ProgressDisplay:
    """The display for ``wait(progress=...)``: False → nothing; True/"auto" → rich, tqdm or lines."""
    if progress is False:
        return NoProgress()
    out = stream or sys.stderr
    kind = "auto" if progress is True else progress
    if kind == "auto":
        if not _interactive(out):
            kind = "lines"
        elif importlib.util.find_spec("rich") is not None:
            kind = "rich"
        elif importlib.util.find_spec("tqdm") is not None:
            kind = "tqdm"
        else:
            kind = "lines"
    if kind == "rich":
        return RichProgress(out)
    if kind == "tqdm":
        return TqdmProgress(out)
    return LineProgress(out)
