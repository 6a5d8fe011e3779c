"""What this server accepts beyond what a spec's own validation checks: size limits, user code, file paths.

Each check returns ``ErrorDetail``s naming the field, the limit and the setting that raises it, so a
user knows both what to change in the spec and what to ask the operator for.
"""

from __future__ import annotations

from pathlib import Path

from optforge.settings import Settings
from optforge.spec import SpecError, StudySpec, TaskSpec
from optforge.spec._api import ErrorDetail


def _too_big(loc: list[str | int], value: int, limit: int, setting: str) -> ErrorDetail:
    return ErrorDetail(
        loc=loc,
        msg=f"{value} is above this server's limit of {limit}; lower it (the operator can raise {setting})",
        type="limit_exceeded",
    )


def limit_errors(spec: StudySpec, settings: Settings) -> list[ErrorDetail]:
    """Fields of ``spec`` beyond the server's configured maxima."""
    errors = []
    if spec.search.n_trials > settings.max_trials:
        errors.append(
            _too_big(["body", "search", "n_trials"], spec.search.n_trials, settings.max_trials, "OPTFORGE_MAX_TRIALS")
        )
    if spec.task.steps > settings.max_steps:
        errors.append(_too_big(["body", "task", "steps"], spec.task.steps, settings.max_steps, "OPTFORGE_MAX_STEPS"))
    if spec.task.model.width > settings.max_width:
        errors.append(
            _too_big(
                ["body", "task", "model", "width"], spec.task.model.width, settings.max_width, "OPTFORGE_MAX_WIDTH"
            )
        )
    proxy = spec.search.proxy
    if proxy is not None and proxy.width is not None and proxy.width > settings.max_width:
        errors.append(
            _too_big(["body", "search", "proxy", "width"], proxy.width, settings.max_width, "OPTFORGE_MAX_WIDTH")
        )
    return errors


def user_code_errors(
    task: TaskSpec, settings: Settings, *, prefix: tuple[str, ...] = ("body", "task")
) -> list[ErrorDetail]:
    """Entry points (the user's own Python) are refused unless the server runs with ``--allow-user-code``."""
    if settings.allow_user_code:
        return []
    errors = []
    for part, spec in (("model", task.model), ("data", task.data)):
        if spec.entrypoint is not None:
            errors.append(
                ErrorDetail(
                    loc=[*prefix, part, "entrypoint"],
                    msg="this server runs no user code; use a built-in "
                    f"{part} (task.{part}.name) or start the server with --allow-user-code",
                    type="user_code_refused",
                )
            )
    return errors


def confine_data_path(task: TaskSpec, data_dir: Path) -> tuple[TaskSpec, list[ErrorDetail]]:
    """``task`` with ``data.path`` made absolute inside ``data_dir``, or the error saying why it is not.

    Relative paths are read from ``data_dir``; absolute ones must already lie inside it. Symlinks are
    resolved first, so neither ``../`` nor a link can reach a file outside.
    """
    if task.data.path is None:
        return task, []
    root = data_dir.expanduser().resolve()
    raw = Path(task.data.path).expanduser()
    resolved = (raw if raw.is_absolute() else root / raw).resolve()
    if not resolved.is_relative_to(root):
        detail = ErrorDetail(
            loc=["body", "task", "data", "path"],
            msg=f"data files must lie inside the server's data directory {root}; give a path relative to it",
            type="path_outside_data_dir",
        )
        return task, [detail]
    data = task.data.model_copy(update={"path": str(resolved)})
    return task.model_copy(update={"data": data}), []


def search_errors(spec: StudySpec) -> list[ErrorDetail]:
    """Problems only the search can see (fixed values and ranges that fit no searched family, a sampler
    that cannot work on the space), found now rather than when the study starts."""
    from optforge.search import validate_study

    try:
        validate_study(spec)
    except SpecError as exc:
        return [
            ErrorDetail(loc=["body", *(int(p) if p.isdigit() else p for p in field.split("."))], msg=msg)
            for field, msg in exc.errors
        ]
    return []
