"""Learned-optimizer weight files: the update network plus what is needed to apply it.

A weights file is ``torch.save`` of ``{"network": state_dict, "meta": {...}}`` (tensors, strings and
numbers only, so it loads with ``torch.load(weights_only=True)``). ``meta`` holds the parametrization
(``mup`` or ``sp``), the base step multiplier, the exp multiplier of the magnitude output, μP's base
width and a summary of how the weights were meta-trained. The shipped files live in ``weights/`` next
to this module: ``mulo_v1.pt`` (μLO) and ``splo_v1.pt`` (the standard-parametrization LO).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from optforge.learned_opt.network import UpdateNetwork

Parametrization = Literal["mup", "sp"]
WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED: dict[Parametrization, str] = {"mup": "mulo_v1.pt", "sp": "splo_v1.pt"}
# The paper's step multipliers: μLO's updates are scaled per tensor by μ(p), so it affords a 10x larger base
# step than the standard-parametrization LO, whose step must suit every width at once.
DEFAULT_STEP_MULT: dict[Parametrization, float] = {"mup": 0.01, "sp": 0.001}
EXP_MULT = 0.001  # Δ = d · exp(0.001 · s): the magnitude output moves the step size slowly (paper, reference code)
# μP base width the shipped weights were meta-trained against: the engine's default (ModelSpec.base_width),
# so a μP model built with default settings and MuLO agree on where μP equals SP.
DEFAULT_BASE_WIDTH = 128


@dataclass(frozen=True)
class LearnedWeights:
    """An update network's weights with the constants its updates were meta-trained under."""

    network: Mapping[str, torch.Tensor]
    parametrization: Parametrization
    step_mult: float
    exp_mult: float = EXP_MULT
    base_width: int = DEFAULT_BASE_WIDTH
    name: str = "custom"
    info: Mapping[str, Any] = field(default_factory=dict)

    def build_network(self) -> UpdateNetwork:
        """A frozen :class:`UpdateNetwork` holding these weights."""
        hidden = int(self.network["layers.0.weight"].shape[0])
        net = UpdateNetwork(hidden).requires_grad_(False)
        net.load_state_dict(dict(self.network))
        return net

    def meta(self) -> dict[str, Any]:
        return {
            "parametrization": self.parametrization,
            "step_mult": float(self.step_mult),
            "exp_mult": float(self.exp_mult),
            "base_width": int(self.base_width),
            "name": self.name,
            "info": dict(self.info),
        }

    def to_bytes(self) -> bytes:
        """The weights file's bytes (for ``storage.repo.learned.save_checkpoint``, format ``torch``)."""
        buffer = io.BytesIO()
        torch.save(
            {"network": {k: v.detach().cpu().clone() for k, v in self.network.items()}, "meta": self.meta()}, buffer
        )
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def from_network(
        cls,
        network: UpdateNetwork,
        parametrization: Parametrization,
        *,
        step_mult: float | None = None,
        base_width: int = DEFAULT_BASE_WIDTH,
        name: str = "custom",
        info: Mapping[str, Any] | None = None,
    ) -> LearnedWeights:
        return cls(
            network={k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
            parametrization=parametrization,
            step_mult=DEFAULT_STEP_MULT[parametrization] if step_mult is None else step_mult,
            base_width=base_width,
            name=name,
            info=dict(info or {}),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LearnedWeights:
        return cls._from_payload(torch.load(io.BytesIO(data), weights_only=True, map_location="cpu"), "<bytes>")

    @classmethod
    def load(cls, path: str | Path) -> LearnedWeights:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no learned-optimizer weights at {path}: pass weights= an existing .pt file")
        return cls._from_payload(torch.load(path, weights_only=True, map_location="cpu"), str(path))

    @classmethod
    def _from_payload(cls, payload: Any, source: str) -> LearnedWeights:
        if not isinstance(payload, dict) or "network" not in payload or "meta" not in payload:
            raise ValueError(f"{source} is not a learned-optimizer weights file (expected keys 'network' and 'meta')")
        meta = payload["meta"]
        if meta.get("parametrization") not in ("mup", "sp"):
            raise ValueError(
                f"{source}: meta.parametrization must be 'mup' or 'sp', got {meta.get('parametrization')!r}"
            )
        return cls(
            network=payload["network"],
            parametrization=meta["parametrization"],
            step_mult=float(meta["step_mult"]),
            exp_mult=float(meta.get("exp_mult", EXP_MULT)),
            base_width=int(meta.get("base_width", DEFAULT_BASE_WIDTH)),
            name=str(meta.get("name", "custom")),
            info=dict(meta.get("info", {})),
        )


def shipped_weights(parametrization: Parametrization = "mup") -> LearnedWeights:
    """The meta-trained weights that ship with optforge (``mulo_v1`` for μP, ``splo_v1`` for SP)."""
    return LearnedWeights.load(WEIGHTS_DIR / SHIPPED[parametrization])
