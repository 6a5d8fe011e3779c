"""The built-in workloads (mlp, cnn, transformer), checked against the data and built with their parametrization knobs."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from optforge.engine.data import Dataset
from optforge.engine.workloads.cnn import ResNet
from optforge.engine.workloads.mlp import ACTIVATIONS, MLP
from optforge.engine.workloads.transformer import Transformer
from optforge.spec import ModelSpec, SpecError


@dataclass(frozen=True)
class WorkloadScales:
    """The parametrization knobs every built-in workload takes. The defaults are standard parametrization.

    μP fills these from width / base width (:func:`optforge.engine.workloads.mup_build.mup_scales`):
    ``output_mult`` = base_width / width, ``attn_scale`` = sqrt(base_head_dim) / head_dim and
    ``zero_readout`` = ``model.zero_readout``.
    """

    output_mult: float = 1.0
    attn_scale: float | None = None  # None: scaled_dot_product_attention's 1/sqrt(head_dim)
    zero_readout: bool = False


def spec_error(field: str, message: str) -> SpecError:
    """A SpecError about one TaskSpec field."""
    return SpecError([(field, message)], "TaskSpec")


def _check_kwargs(spec: ModelSpec, cls: type[nn.Module]) -> None:
    reserved = {
        "self",
        "input_shape",
        "n_outputs",
        "vocab_size",
        "seq_len",
        "width",
        "depth",
        "output_mult",
        "attn_scale",
    }
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in reserved]
    for key, value in spec.kwargs.items():
        if key not in allowed:
            raise spec_error(f"model.kwargs.{key}", f"{spec.name!r} takes only these kwargs: {', '.join(allowed)}")
        if key == "activation" and value not in ACTIVATIONS:
            raise spec_error("model.kwargs.activation", f"must be one of {list(ACTIVATIONS)}, got {value!r}")
        if key in ("heads", "mlp_ratio") and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise spec_error(f"model.kwargs.{key}", f"must be a positive whole number, got {value!r}")
    heads = spec.kwargs.get("heads")
    if heads is not None and spec.width % heads:
        raise spec_error("model.kwargs.heads", f"{heads} heads do not divide model.width {spec.width}")


def _check_data(spec: ModelSpec, data: Dataset) -> None:
    if spec.name == "transformer" and data.kind != "lm":
        raise spec_error("model.name", f"'transformer' needs language-model (token) data; {data.name} is {data.kind}")
    if spec.name in ("mlp", "cnn") and data.kind == "lm":
        raise spec_error("model.name", f"{spec.name!r} cannot read token data ({data.name}); use 'transformer'")
    if spec.name == "cnn" and len(data.input_shape) not in (2, 3):
        raise spec_error(
            "model.name",
            f"'cnn' needs images (C, H, W) or (H, W); {data.name} examples have shape "
            f"{data.input_shape}. Use 'mlp' for vectors",
        )


def build_builtin(spec: ModelSpec, data: Dataset, scales: WorkloadScales) -> nn.Module:
    """The built-in workload ``spec.name``, checked against ``data`` before it is built."""
    _check_data(spec, data)
    size: dict[str, Any] = {"width": spec.width, "depth": spec.depth, "output_mult": scales.output_mult}
    model: nn.Module
    if spec.name == "transformer":
        _check_kwargs(spec, Transformer)
        model = Transformer(data.n_outputs, data.input_shape[0], attn_scale=scales.attn_scale, **size, **spec.kwargs)
    else:
        cls = ResNet if spec.name == "cnn" else MLP
        _check_kwargs(spec, cls)
        model = cls(data.input_shape, data.n_outputs, **size, **spec.kwargs)
    if scales.zero_readout:
        nn.init.zeros_(model.readout.weight)
        if model.readout.bias is not None:
            nn.init.zeros_(model.readout.bias)
    return model
