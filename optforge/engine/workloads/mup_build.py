"""Workloads in μP: the model at its width, put in μP relative to ``model.base_width``.

Which dimensions scale with width is read off two shape-only copies of the same model, built at the base
width and at ``DELTA_FACTOR`` x the base width, exactly as ``mup.set_base_shapes(model, base, delta=...)`` does. The same code serves built-in and user models;
a user factory must therefore take a ``width`` argument.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from optforge.engine.data import Dataset
from optforge.engine.mup import MupError, attention_scale, parametrize
from optforge.engine.workloads.builtin import WorkloadScales, build_builtin, spec_error
from optforge.engine.workloads.transformer import default_heads
from optforge.engine.workloads.user import build_user_model, call_user_factory, takes_width
from optforge.spec import ModelSpec

# The second width that tells which dimensions scale. Any width other than the base would do; doubling
# keeps a fixed head count dividing the width whenever it divides the base width.
DELTA_FACTOR = 2


def _shadow(build: Callable[[], nn.Module]) -> nn.Module:
    """A copy whose shapes are read, built under a forked RNG so the caller's random stream is untouched.

    Built on CPU, not on the meta device: these copies are at the (small) base width and twice it, and the
    meta device's first use imports torch's reference decompositions, which costs seconds.
    """
    with torch.random.fork_rng(devices=[]):  # CPU only: no CUDA initialization for a shape copy
        return build()


def _at(spec: ModelSpec, width: int) -> ModelSpec:
    return spec.model_copy(update={"width": width})


def _heads(spec: ModelSpec, width: int) -> int:
    heads = spec.kwargs.get("heads") or default_heads(width)
    if width % heads:
        raise spec_error(
            "model.base_width",
            f"{heads} heads do not divide the base width {width}; choose a base width that is a multiple of model.kwargs.heads",
        )
    return int(heads)


def transformer_attn_scale(spec: ModelSpec) -> float | None:
    """μP's attention scale for the built-in transformer: 1/head_dim, equal to SP's 1/sqrt(head_dim) at the
    base head size (None there, so SP and μP run the very same kernel call)."""
    head_dim = spec.width // _heads(spec, spec.width)
    base_head_dim = spec.base_width // _heads(spec, spec.base_width)
    return None if head_dim == base_head_dim else attention_scale(head_dim, base_head_dim)


def mup_scales(spec: ModelSpec) -> WorkloadScales:
    """The μP knobs of a built-in workload: readout multiplier base_width / width, 1/d attention, and the
    zero readout if the spec asks for it."""
    return WorkloadScales(
        output_mult=spec.base_width / spec.width,
        attn_scale=transformer_attn_scale(spec) if spec.name == "transformer" else None,
        zero_readout=spec.zero_readout,
    )


def _in_mup(
    model: nn.Module,
    spec: ModelSpec,
    build_at: Callable[[ModelSpec], nn.Module],
    *,
    readout_hook: bool,
    what: str,
    field: str,
) -> nn.Module:
    """``model`` put in μP against its base- and delta-width copies made by ``build_at``; a μP problem
    becomes a SpecError on ``field``."""
    base = _shadow(lambda: build_at(_at(spec, spec.base_width)))
    delta = _shadow(lambda: build_at(_at(spec, DELTA_FACTOR * spec.base_width)))
    try:
        parametrize(
            model,
            base,
            delta,
            base_width=spec.base_width,
            delta_width=DELTA_FACTOR * spec.base_width,
            width=spec.width,
            readout_hook=readout_hook,
            zero_readout=spec.zero_readout,
            what=what,
        )
    except MupError as exc:
        raise spec_error(field, str(exc)) from exc
    return model


def build_builtin_mup(spec: ModelSpec, data: Dataset) -> nn.Module:
    """A built-in workload in μP relative to ``spec.base_width`` (at the base width: SP itself, unless
    ``spec.zero_readout``)."""
    return _in_mup(
        build_builtin(spec, data, mup_scales(spec)),
        spec,
        lambda at: build_builtin(at, data, WorkloadScales()),
        readout_hook=False,  # the constructor already applies output_mult
        what=f"model {spec.name!r}",
        field="model",
    )


def build_user_mup(spec: ModelSpec, data: Dataset) -> nn.Module:
    """The user's model in μP: built and checked as usual, then compared with its base- and delta-width copies."""
    if not takes_width(spec):
        raise spec_error(
            "model.entrypoint",
            f"μP builds {spec.entrypoint} at several widths to find which dimensions scale: give the factory a "
            "`width` argument and size its hidden layers by it (or train without μP)",
        )
    return _in_mup(
        build_user_model(spec, data),
        spec,
        lambda at: call_user_factory(at, data),
        readout_hook=True,
        what=f"the model from {spec.entrypoint}",
        field="model.entrypoint",
    )
