"""Loading specs from YAML/JSON files, strings or dicts, with errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class SpecError(ValueError):
    """A spec that failed validation. ``errors`` lists ``(field path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]], source: str = "spec") -> None:
        self.errors = errors
        self.source = source
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in errors)
        super().__init__(f"invalid {source}:\n{lines}")


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """``(dotted.field.path, message)`` for each problem in a pydantic ValidationError."""
    out = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "(root)"
        msg = item["msg"].removeprefix("Value error, ")
        out.append((loc, msg))
    return out


def read_mapping(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A dict from a dict, a path to a .yaml/.yml/.json file, or a YAML/JSON string."""
    if isinstance(source, dict):
        return source
    text: str
    path = Path(source) if isinstance(source, Path) or "\n" not in str(source) else None
    if path is not None and path.suffix.lower() in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise SpecError([("(file)", f"no such spec file: {path}")])
        text = path.read_text()
    else:
        text = str(source)
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError([("(syntax)", str(exc))]) from None
    if not isinstance(data, dict):
        raise SpecError([("(root)", f"expected a mapping of fields, got {type(data).__name__}")])
    return data


def load_spec(model: type[M], source: str | Path | dict[str, Any] | M) -> M:
    """Validate ``source`` (a model instance, dict, file path or YAML/JSON text) as ``model``.

    Raises SpecError listing every bad field with the values it allows.
    """
    if isinstance(source, model):
        return source
    try:
        return model.model_validate(read_mapping(source))  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SpecError(field_errors(exc), source=model.__name__) from None
