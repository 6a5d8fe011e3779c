"""The user's own model (``model.entrypoint: "package.module:function"``).

The function is called with its ``model.kwargs`` plus, when its signature asks for them: ``width``,
``depth``, ``input_shape`` (one example's shape), ``n_outputs`` (classes, regression targets or vocab
size) and ``kind`` (``classification`` | ``regression`` | ``lm``). It returns a ``torch.nn.Module``
whose ``forward`` maps a batch ``(B, *input_shape)`` to ``(B, n_outputs)``, or for ``lm`` token ids
``(B, T)`` to logits ``(B, T, n_outputs)``. A two-example forward pass checks this before training.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from optforge.engine.data import Dataset
from optforge.engine.entrypoints import EntryPointError, call_with_supported, load_entrypoint
from optforge.spec import ModelSpec


def expected_output_shape(data: Dataset, batch: int) -> tuple[int, ...]:
    """What a model must return for ``batch`` examples of ``data``."""
    if data.kind == "lm":
        return (batch, data.input_shape[0], data.n_outputs)
    return (batch, data.n_outputs)


def takes_width(spec: ModelSpec) -> bool:
    """Whether the user's factory accepts a ``width`` argument (by name or through ``**kwargs``)."""
    params = inspect.signature(load_entrypoint(spec.entrypoint or "", field="model.entrypoint")).parameters
    return "width" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def call_user_factory(spec: ModelSpec, data: Dataset) -> nn.Module:
    """The module the user's factory returns for ``spec`` (unchecked: no forward pass)."""
    ref = spec.entrypoint or ""
    fn = load_entrypoint(ref, field="model.entrypoint")
    offered = {
        "width": spec.width,
        "depth": spec.depth,
        "input_shape": data.input_shape,
        "n_outputs": data.n_outputs,
        "kind": data.kind,
    }
    model = call_with_supported(fn, offered, spec.kwargs, field="model.entrypoint")
    if not isinstance(model, nn.Module):
        raise EntryPointError(f"model.entrypoint: {ref} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def build_user_model(spec: ModelSpec, data: Dataset) -> nn.Module:
    """Call the user's factory and check its output shape; EntryPointError names module and function."""
    ref = spec.entrypoint or ""
    model = call_user_factory(spec, data)
    was_training = model.training
    model.eval()  # no BatchNorm statistics are touched by the check
    try:
        with torch.no_grad():
            out = model(data.x_train[:2])
    except Exception as exc:
        raise EntryPointError(
            f"model.entrypoint: the model from {ref} failed on a batch of shape {tuple(data.x_train[:2].shape)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        model.train(was_training)
    want = expected_output_shape(data, 2)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise EntryPointError(
            f"model.entrypoint: the model from {ref} returned {got} for a batch of 2; expected {want} "
            f"({'batch, seq_len, vocab' if data.kind == 'lm' else 'batch, n_outputs'})"
        )
    return model
