"""Loading user code named as ``"package.module:function"``, with errors that name what is missing."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any


class EntryPointError(ValueError):
    """A user entry point that cannot be imported, is not callable, or failed when called."""


def load_entrypoint(ref: str, *, field: str = "entrypoint") -> Callable[..., Any]:
    """Import and return the callable that ``ref`` (``"pkg.module:attr"``) names."""
    module_name, sep, attr_path = ref.partition(":")
    if not sep or not module_name or not attr_path:
        raise EntryPointError(f"{field}: {ref!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while the module runs
        raise EntryPointError(f"{field}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise EntryPointError(f"{field}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EntryPointError(f"{field}: {ref!r} is not callable")
    return obj


def call_with_supported(fn: Callable[..., Any], offered: dict[str, Any], kwargs: dict[str, Any], *, field: str) -> Any:
    """Call ``fn(**kwargs, **offered)``, passing each ``offered`` argument only when ``fn`` accepts it.

    ``offered`` holds what optforge knows (width, depth, input_shape, n_outputs, seed, ...); ``kwargs``
    are the user's own and are always passed.
    """
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in offered.items() if (takes_all or k in params) and k not in kwargs}
    try:
        return fn(**kwargs, **extra)
    except Exception as exc:
        name = f"{fn.__module__}:{getattr(fn, '__qualname__', fn)}"
        raise EntryPointError(f"{field}: {name} raised {type(exc).__name__}: {exc}") from exc
