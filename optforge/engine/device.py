"""Where a trial runs and what it records about that: device choice, precision, code version."""

from __future__ import annotations

import contextlib
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Literal

import torch

from optforge.spec import SpecError


def resolve_device(name: Literal["auto", "cpu", "cuda"]) -> torch.device:
    """``auto`` is CUDA when available, else CPU. Asking for ``cuda`` without one is a SpecError."""
    if name == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if name == "cuda":
        raise SpecError(
            [("device", "'cuda' was asked for but torch sees no CUDA device; use 'auto' or 'cpu'")], "TaskSpec"
        )
    return torch.device("cpu")


def autocast(device: torch.device, precision: Literal["fp32", "bf16"]) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA when asked for; a no-op otherwise (CPU bf16 is slower than fp32 on most CPUs)."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@cache
def code_version() -> str:
    """The git commit of the optforge checkout (``<sha>-dirty`` with local changes), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return metadata.version("optforge")
    except metadata.PackageNotFoundError:
        return "unknown"


def device_name(device: torch.device) -> str:
    """``cpu`` or ``cuda:<GPU model>``, for trial records."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"
