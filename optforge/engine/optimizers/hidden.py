"""Which parameters a matrix (spectral) update may touch: the 2-D hidden weights, and nothing else.

Muon-like updates orthogonalize a weight matrix's momentum. That assumes a matrix mapping hidden
features to hidden features: embeddings and the readout are not (their fan-in or fan-out is a vocabulary
or class count), and biases and norm gains are not matrices at all. Those go to an AdamW part instead.
"""

from __future__ import annotations

from torch import nn

from optforge.engine.routing import group_parameters


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """``model``'s 2-D ``hidden`` weights, in registration order (conv kernels and other roles excluded)."""
    return [p for _, p in group_parameters(model).get("hidden", []) if p.ndim == 2]


def other_parameters(model: nn.Module, exclude: list[nn.Parameter]) -> list[nn.Parameter]:
    """``model``'s trainable parameters that are not in ``exclude``, each once (tied weights included once)."""
    excluded = {id(p) for p in exclude}
    return [p for named in group_parameters(model).values() for _, p in named if id(p) not in excluded]
