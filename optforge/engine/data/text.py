"""Char-level language-modelling data from a text file, or by default CPython's bundled docs text.

The vocabulary is the set of characters of the whole corpus (token id = rank of the character), so
validation text has no unknown characters. The split is by position, never shuffled, so no validation
sentence leaks into training: the first ``1 - val_fraction`` of the corpus trains, the rest validates.
Each split is cut into windows of ``seq_len + 1`` characters that overlap by one (the next window
starts where the previous window's last target is), giving ``x = window[:-1]`` and ``y = window[1:]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from optforge.engine.data._dataset import Dataset
from optforge.spec import DataSpec, SpecError


def default_corpus() -> str:
    """The pydoc topic texts that ship with CPython (about 460k characters), in a fixed order."""
    from pydoc_data import topics

    return "\n\n".join(topics.topics[key] for key in sorted(topics.topics))


def read_corpus(spec: DataSpec) -> tuple[str, str]:
    """``(name, text)`` of the corpus ``spec`` names, truncated to ``max_chars``."""
    if spec.path is None:
        name, text = "text:pydoc_data.topics", default_corpus()
    else:
        path = Path(spec.path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError([("data.path", f"no such text file: {path}")], "DataSpec") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError([("data.path", f"cannot read {path} as UTF-8 text: {exc}")], "DataSpec") from None
        name = f"text:{path.name}"
    if spec.max_chars is not None:
        text = text[: spec.max_chars]
    return name, text


def windows(ids: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-character targets from consecutive windows of ``seq_len + 1`` tokens."""
    chunks = ids.unfold(0, seq_len + 1, seq_len)
    return chunks[:, :-1].contiguous(), chunks[:, 1:].contiguous()


def load_text(spec: DataSpec) -> Dataset:
    """The char-level dataset; a SpecError names the field to change when a split is too short."""
    name, text = read_corpus(spec)
    # One code point per character: np.unique gives the sorted vocabulary and every token id at once.
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab_codes, ids = np.unique(codes, return_inverse=True)
    ids_t = torch.as_tensor(ids.astype(np.int64))
    n_train = int(len(ids) * (1 - spec.val_fraction))
    train, val = ids_t[:n_train], ids_t[n_train:]
    shortest = min(len(train), len(val))
    if shortest < spec.seq_len + 1:
        raise SpecError(
            [
                (
                    "data.seq_len",
                    f"{spec.seq_len} is too long: a split of the {len(ids)}-character corpus has only "
                    f"{shortest} characters; lower seq_len, or raise max_chars or val_fraction",
                )
            ],
            "DataSpec",
        )
    x_train, y_train = windows(train, spec.seq_len)
    x_val, y_val = windows(val, spec.seq_len)
    return Dataset(
        name=name,
        kind="lm",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        n_outputs=len(vocab_codes),
        vocab="".join(chr(c) for c in vocab_codes),
    )
