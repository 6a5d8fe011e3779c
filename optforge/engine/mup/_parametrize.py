"""Turn a model built in the standard parametrization into its μP version, relative to a base width.

What changes (Yang et al. 2022, "Tensor Programs V", Table 3; the same steps as ``mup.set_base_shapes``
with ``MuReadout``):

- weights keep torch's default init: its variance is already 1/fan_in for input and hidden weights;
- biases of layers whose fan-in grows are multiplied by sqrt(fan-in multiplier): torch draws them with
  std 1/sqrt(fan_in), μP wants a width-independent size (equal to SP's at the base width);
- the readout's input is multiplied by base_width / width, so its output neither blows up nor vanishes
  as width grows. Built-in workloads take this multiplier in their constructor; a user model gets it
  as a forward pre-hook on its readout module. The readout's weights keep the variance they have at the
  base width (SP's init x sqrt(fan-in multiplier), ``MuReadout``'s default), or start at zero
  (``zero_readout``, ``MuReadout(readout_zero_init=True)``); see docs/mup.md for why zero is not the
  default;
- attention uses 1/head_dim instead of 1/sqrt(head_dim) (built-in transformer; see
  :func:`optforge.engine.mup.attention_scale`).

At the base width every one of these is the identity (the zero readout aside): μP there *is* SP.

A layer that maps a width-sized input to a fixed-size output but is not the readout has no μP rule:
it is refused with the fix (mark it ``readout`` with :func:`optforge.engine.routing.mark_role`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from optforge.engine.mup._shapes import MupError, MupShapes, ParamShape, attach_shapes, infer_shapes


class ReadoutMultiplier:
    """A forward pre-hook that scales a readout's input by ``mult`` (picklable, unlike a closure)."""

    def __init__(self, mult: float) -> None:
        self.mult = mult

    def __call__(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (args[0] * self.mult, *args[1:])


def attention_scale(head_dim: int, base_head_dim: int) -> float:
    """μP's attention temperature ``sqrt(base_head_dim) / head_dim``: 1/head_dim in width, and exactly
    SP's 1/sqrt(head_dim) at the base head size ("Tensor Programs V", Section 4 / Appendix B)."""
    return math.sqrt(base_head_dim) / head_dim


def _weight_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Modules that own a ``weight`` parameter, keyed by the weight's qualified name."""
    out = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter):
            out[f"{name}.weight" if name else "weight"] = module
    return out


def _readout_names(shapes: MupShapes) -> list[str]:
    return [name for name, shape in shapes.params.items() if shape.role == "readout" and name.endswith("weight")]


def _check_readouts(shapes: MupShapes, modules: dict[str, nn.Module], what: str) -> None:
    readouts = set(_readout_names(shapes))
    for name, shape in shapes.params.items():
        module = modules.get(name)
        if not isinstance(module, nn.Linear) or name in readouts:
            continue
        if shape.base[0] is None and shape.base[1] is not None:
            raise MupError(
                f"{what}: layer {name.removesuffix('.weight')} maps a width-sized input to a fixed size but is not the "
                "readout, so μP has no rule for it. Mark it with optforge.engine.routing.mark_role(module, 'readout') "
                "if it produces an output, or let its output size follow the width"
            )


def _rescale_biases(model: nn.Module, shapes: MupShapes, modules: dict[str, nn.Module]) -> None:
    for name, module in modules.items():
        shape: ParamShape | None = shapes.params.get(name)
        bias = getattr(module, "bias", None)
        if shape is None or shape.role == "readout" or not isinstance(bias, nn.Parameter) or shape.fan_in_mult == 1:
            continue
        if len(shape.shape) >= 2 and isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
            with torch.no_grad():
                bias.mul_(math.sqrt(shape.fan_in_mult))


def _init_readouts(modules: dict[str, nn.Module], shapes: MupShapes, *, zero: bool) -> None:
    """Zero the readouts, or rescale SP's init by sqrt(fan-in multiplier) so its variance is the base width's."""
    for name in _readout_names(shapes):
        module = modules[name]
        factor = 0.0 if zero else math.sqrt(shapes.params[name].fan_in_mult)
        with torch.no_grad():
            for tensor in (module.weight, getattr(module, "bias", None)):
                if isinstance(tensor, torch.Tensor) and factor != 1.0:
                    tensor.mul_(factor)


def parametrize(
    model: nn.Module,
    base: nn.Module,
    delta: nn.Module,
    *,
    base_width: int,
    delta_width: int,
    width: int,
    readout_hook: bool,
    zero_readout: bool = False,
    what: str = "the model",
) -> MupShapes:
    """Put ``model`` (built at ``width``) in μP in place, relative to ``base`` (the same architecture built at
    ``base_width``) and ``delta`` (built at ``delta_width`` != ``base_width``; only shapes are read).

    ``readout_hook`` adds the readout's output multiplier as a forward pre-hook; built-in workloads pass
    False because their constructor already applies it. ``zero_readout`` starts the readout at zero
    instead of at SP's init variance of the base width. The shapes are recorded on the model (see
    :func:`optforge.engine.mup.shapes_of`) and returned. Raises MupError naming the layer and the fix.
    """
    shapes = infer_shapes(model, base, delta, base_width=base_width, delta_width=delta_width, width=width, what=what)
    modules = _weight_modules(model)
    _check_readouts(shapes, modules, what)
    _rescale_biases(model, shapes, modules)
    _init_readouts(modules, shapes, zero=zero_readout)
    if readout_hook:
        for name in _readout_names(shapes):
            mult = 1.0 / shapes.params[name].fan_in_mult
            if mult != 1.0:
                modules[name].register_forward_pre_hook(ReadoutMultiplier(mult))
    attach_shapes(model, shapes)
    return shapes


def mup_model(
    factory: Callable[..., nn.Module], *, width: int, base_width: int, zero_readout: bool = False, **kwargs: Any
) -> nn.Module:
    """``factory(width=width, **kwargs)`` in μP relative to ``base_width``: for code that holds its own model
    factory rather than a TaskSpec (``build_model(task, data, mup=True)`` does the same for a spec).

    The factory is also called at ``base_width`` and ``2 x base_width`` (only their shapes are read),
    under a forked RNG, so the returned model's init is what ``factory(width=width)`` alone would draw.
    Raises MupError naming the layer and the fix.
    """
    model = factory(width=width, **kwargs)
    with torch.random.fork_rng(devices=[]):
        base = factory(width=base_width, **kwargs)
        delta = factory(width=2 * base_width, **kwargs)
    what = f"the model from {getattr(factory, '__qualname__', factory)}"
    parametrize(
        model,
        base,
        delta,
        base_width=base_width,
        delta_width=2 * base_width,
        width=width,
        readout_hook=True,
        zero_readout=zero_readout,
        what=what,
    )
    return model
