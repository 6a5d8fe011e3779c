"""Every optimizer family optforge can train with: one ``Family`` entry each.

Adding a family touches one place: an entry in the ``_families_*`` module of its kind. Its constructor
is a lazy ``"module:attribute"`` reference that the engine resolves, so this package (and the SDK reading
it) never imports torch. Search ranges follow each family's paper or reference implementation and are
anchored on a tuned AdamW LR; docs/families.md is the table ``python -m optforge.catalog.render`` makes
of this registry.

Not offered: AlphaAdam (Chang et al. 2025, arXiv 2501.18094). No library ships it, and its update rule
could not be obtained from the paper here (only the abstract: a mask from momentum-gradient sign
agreement with a dynamic strength α). Rather than register a guess under its name, the closest published
mechanism is offered as the ``cautious`` flag (Liang et al. 2024) on the families whose library has it.
"""

from __future__ import annotations

from optforge.catalog._families_adam import ADAM_FAMILIES
from optforge.catalog._families_curvature import CURVATURE_FAMILIES
from optforge.catalog._families_large_scale import LARGE_SCALE_FAMILIES
from optforge.catalog._families_learned import LEARNED_FAMILIES
from optforge.catalog._families_momentum import MOMENTUM_FAMILIES
from optforge.catalog._families_tuning_free import TUNING_FREE_FAMILIES
from optforge.catalog._family import Family


def _index(*kinds: tuple[Family, ...]) -> dict[str, Family]:
    index: dict[str, Family] = {}
    for family in (f for kind in kinds for f in kind):
        if family.name in index:
            raise ValueError(f"optimizer family {family.name!r} is registered twice")
        index[family.name] = family
    return index


FAMILIES: dict[str, Family] = _index(
    ADAM_FAMILIES, MOMENTUM_FAMILIES, CURVATURE_FAMILIES, LARGE_SCALE_FAMILIES, TUNING_FREE_FAMILIES, LEARNED_FAMILIES
)

# The default search space: strong, well-understood families covering each design, at most one per idea.
# - adamw, nadam: the baselines everything is measured against (NAdamW is AlgoPerf's baseline).
# - sgd: Nesterov SGD, still the one to beat on convnets and the only non-adaptive choice.
# - lion: sign descent with one state tensor (memory-light), strong at large batch.
# - muon, soap: the matrix preconditioners that stayed ahead of well-tuned AdamW in Wen et al. 2025
#   ("Fantastic Pretraining Optimizers", about 1.4x at 0.1B), Muon the cheaper, SOAP the stronger per step.
# - adan: Nesterov-style adaptive momentum, competitive with AdamW across vision and language.
# - ademamix: a slow second EMA that pays off on longer runs (Pagliardini et al. 2024).
# - schedulefree_adamw: won AlgoPerf's self-tuning track; needs no decay schedule (runs with 'constant').
# Left out on purpose: Shampoo/Kron (slower per step on CPU than SOAP for similar gains), second-order and
# parameter-free families (less robust under a fixed budget), and the many Adam variants whose gains over
# a tuned AdamW are small. Users name those explicitly.
DEFAULT_SEARCH_FAMILIES: tuple[str, ...] = (
    "adamw",
    "nadam",
    "sgd",
    "lion",
    "muon",
    "soap",
    "adan",
    "ademamix",
    "schedulefree_adamw",
)


def get_family(name: str) -> Family:
    """The family called ``name``; ValueError listing the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown optimizer family {name!r}; choose one of: {', '.join(sorted(FAMILIES))}") from None
