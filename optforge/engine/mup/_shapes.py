"""Which dimensions of each parameter grow with width, and by how much relative to the base width.

μP's rules depend on one thing per parameter: which of its dimensions are "infinite" (scale with
width) and by what factor (its *width multiplier*, current size / size at the base width). This is
what ``mup.set_base_shapes`` computes (Yang et al. 2022, "Tensor Programs V", Appendix J): build the
model at the base width and at a second ("delta") width, call a dimension infinite when the two differ,
and divide the model's own size by the base size.

The result lives on the *module* (``model._optforge_mup``), not on each ``Parameter`` as ``mup`` keeps
it: ``copy.deepcopy`` and ``torch.save(model)`` keep a module attribute but ``mup``'s parameter
attribute is lost on ``deepcopy`` (checked with mup 1.0.0 and torch 2.14). A ``state_dict`` carries
neither: rebuild the model with ``build_model(task, data, mup=True)`` and load the state into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from optforge.engine.routing import ParamRole, classify_parameters

_ATTR = "_optforge_mup"


class MupError(ValueError):
    """A model cannot be put in μP as asked; the message names the layer and the fix."""


@dataclass(frozen=True)
class ParamShape:
    """One parameter's shape, its size at the base width, and which dimensions scale with width.

    ``base[i]`` is None for a finite dimension (the same at every width: classes, vocabulary, input
    features, kernel size). Weights are laid out ``(fan_out, fan_in, ...)`` as in ``nn.Linear`` and
    ``nn.ConvNd``.
    """

    role: ParamRole
    shape: tuple[int, ...]
    base: tuple[int | None, ...]

    def mult(self, dim: int) -> float:
        """Width multiplier of dimension ``dim`` (1 for a finite dimension)."""
        base = self.base[dim]
        return 1.0 if base is None else self.shape[dim] / base

    @property
    def n_inf(self) -> int:
        """How many dimensions scale with width: 0 scalar-like, 1 vector-like, 2 matrix-like."""
        return sum(b is not None for b in self.base)

    @property
    def fan_in(self) -> int:
        """Inputs per output unit (``shape[1] x kernel``); 1 for a 1-D parameter."""
        return 1 if len(self.shape) < 2 else int(torch.Size(self.shape[1:]).numel())

    @property
    def fan_in_mult(self) -> float:
        return self.mult(1) if len(self.shape) >= 2 else 1.0

    @property
    def fan_out_mult(self) -> float:
        return self.mult(0)

    @property
    def width_mult(self) -> float:
        """The multiplier of the last infinite dimension (``mup``'s ``InfShape.width_mult``): a matrix's fan-in."""
        for dim in reversed(range(len(self.base))):
            if self.base[dim] is not None:
                return self.mult(dim)
        return 1.0


@dataclass(frozen=True)
class MupShapes:
    """Every trainable parameter's :class:`ParamShape`, keyed by qualified name, and the two widths."""

    base_width: int
    width: int
    params: Mapping[str, ParamShape]

    @property
    def width_ratio(self) -> float:
        return self.width / self.base_width


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}


def infer_shapes(
    model: nn.Module,
    base: nn.Module,
    delta: nn.Module,
    *,
    base_width: int,
    delta_width: int,
    width: int,
    what: str = "the model",
) -> MupShapes:
    """Compare ``model`` with the same architecture built at ``base_width`` (``base``) and at another width
    (``delta``): a dimension scales with width when ``base`` and ``delta`` differ there.

    ``base`` and ``delta`` may live on the meta device: only shapes are read. Raises MupError when the
    three models do not have the same parameters, or when nothing changes with width.
    """
    target, at_base, at_delta = _shapes(model), _shapes(base), _shapes(delta)
    if not (target.keys() == at_base.keys() == at_delta.keys()):
        extra = sorted((at_base.keys() | at_delta.keys()) ^ target.keys())
        raise MupError(
            f"{what} has different parameters at different widths ({', '.join(extra[:5])}): μP compares the "
            "model built at the base width with the model at its own width, so every width must build the same layers"
        )
    roles = classify_parameters(model)
    params: dict[str, ParamShape] = {}
    for name, shape in target.items():
        b, d = at_base[name], at_delta[name]
        if not len(shape) == len(b) == len(d):
            raise MupError(f"{what}: parameter {name} has {len(b)} dimensions at the base width, {len(shape)} here")
        dims: list[int | None] = []
        for i, (size, base_size, delta_size) in enumerate(zip(shape, b, d, strict=True)):
            if base_size == delta_size:
                if size != base_size:
                    raise MupError(
                        f"{what}: dimension {i} of {name} is {base_size} at two widths but {size} at width {width}; "
                        "a dimension must either follow the width or stay fixed"
                    )
                dims.append(None)
            else:
                dims.append(base_size)
        params[name] = ParamShape(role=roles[name], shape=shape, base=tuple(dims))
    if not any(p.n_inf for p in params.values()):
        raise MupError(
            f"{what} has the same shapes at width {base_width} and {delta_width}: μP needs layers sized by width "
            "(a user factory must use its `width` argument for its hidden sizes)"
        )
    return MupShapes(base_width=base_width, width=width, params=params)


def attach_shapes(model: nn.Module, shapes: MupShapes) -> None:
    """Record ``shapes`` on ``model`` (kept by ``copy.deepcopy`` and ``torch.save(model)``)."""
    object.__setattr__(model, _ATTR, shapes)


def shapes_of(model: nn.Module) -> MupShapes:
    """The μP shapes recorded on ``model``; MupError with the fix when it was not built for μP."""
    shapes = getattr(model, _ATTR, None)
    if shapes is None:
        inner = getattr(model, "_orig_mod", None)  # a torch.compile wrapper
        shapes = getattr(inner, _ATTR, None) if inner is not None else None
    if not isinstance(shapes, MupShapes):
        raise MupError(
            f"{type(model).__name__} was not built for μP: build it with build_model(task, data, mup=True) "
            "(or optforge.engine.mup.mup_model for a factory of your own) before asking for μP learning rates"
        )
    return shapes


def is_mup(model: nn.Module) -> bool:
    """Whether ``model`` carries μP shapes."""
    try:
        shapes_of(model)
    except MupError:
        return False
    return True
