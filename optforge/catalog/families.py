"""Every optimizer family optforge can train with: one ``Family`` entry each.

Adding a family touches this file only: its constructor is a lazy ``"module:attribute"`` reference that
the engine resolves, so this module (and the SDK reading it) never imports torch. Search ranges follow
each family's paper or reference implementation and are anchored on a tuned AdamW LR (see
docs/families.md for the table this registry renders).
"""

from __future__ import annotations

from optforge.catalog._family import Family
from optforge.catalog._hparam import beta, choice, eps, flag, lr, number, weight_decay

_FAMILIES: tuple[Family, ...] = (
    Family(
        name="adamw",
        constructor="torch.optim:AdamW",
        # 1e-3 is Adam's published default; the range spans the optima seen across AlgoPerf workloads.
        hparams=(
            lr(1e-3, 1e-4, 1e-2),
            beta("beta1", 0.9, 0.9, 0.996),  # 1-β1 log[4e-3, 0.1] (AlgoPerf NAdamW search space)
            beta("beta2", 0.999, 0.95, 0.999),
            weight_decay(0.01, 5e-3, 1.0),
            eps(1e-8),
        ),
        state_per_param="2",
        reference="Loshchilov & Hutter 2019, 'Decoupled Weight Decay Regularization'",
    ),
    Family(
        name="sgd",
        constructor="torch.optim:SGD",
        fixed={"nesterov": True},
        pack_betas=False,
        mup_rule="sgd",
        hparams=(
            lr(0.1, 2e-2, 5.0),
            number("momentum", 0.9, 0.8, 0.99, scale="log1m", valid=(0, 1), valid_open=(True, True),
                   doc="heavy-ball momentum (Nesterov)"),
            # SGD's decay is coupled (added to the gradient), so it lives orders of magnitude below AdamW's.
            number("weight_decay", 5e-6, 1e-7, 5e-5, doc="L2 penalty (coupled)"),
        ),
        state_per_param="1",
        reference="Sutskever et al. 2013, 'On the importance of initialization and momentum'",
    ),
    Family(
        name="lion",
        constructor="pytorch_optimizer:Lion",
        mup_rule="adaptive",
        hparams=(
            # Lion's sign update has unit RMS, so its LR sits 3-10x below AdamW's and its decay 3-10x above.
            lr(1e-4, 1e-5, 1e-3),
            beta("beta1", 0.9, searched=False),
            beta("beta2", 0.99, 0.95, 0.999),
            weight_decay(0.1, 1e-2, 3.0),
            flag("cautious", False, "mask update coordinates whose sign disagrees with the gradient (Liang et al. 2024)"),
        ),
        state_per_param="1",
        reference="Chen et al. 2023, 'Symbolic Discovery of Optimization Algorithms'",
        notes="likes large batches",
    ),
    Family(
        name="muon",
        constructor="optforge.engine.optimizers.muon:build",
        routing="hidden_matrices",
        mup_rule="spectral",
        pack_betas=False,
        hparams=(
            lr(0.02, 5e-3, 5e-2, doc="Muon LR for 2-D hidden weights"),
            choice("momentum", 0.95, (0.9, 0.95), "Nesterov momentum of the orthogonalized update"),
            number("weight_decay", 0.0, valid=(0, 10), searched=False, doc="decoupled weight decay on hidden weights"),
            number("ns_steps", 5, kind="int", valid=(1, 20), searched=False, doc="Newton-Schulz iterations"),
            lr(3e-3, 3e-4, 1e-2, doc="AdamW LR for embeddings, readout, norms and biases").model_copy(
                update={"name": "adamw_lr"}
            ),
        ),
        state_per_param="1 (2-D) / 2 (rest, AdamW)",
        reference="Jordan et al. 2024, 'Muon: An optimizer for hidden layers' (torch.optim.Muon)",
        notes="2-D hidden weights only; embeddings, readout, norms and biases use an auxiliary AdamW",
    ),
)

FAMILIES: dict[str, Family] = {f.name: f for f in _FAMILIES}

# The default search space: strong, well-understood families that cover the adaptive, sign-based,
# spectral and schedule-free designs. Users name others explicitly.
DEFAULT_SEARCH_FAMILIES: tuple[str, ...] = tuple(n for n in ("adamw", "sgd", "lion", "muon") if n in FAMILIES)


def get_family(name: str) -> Family:
    """The family called ``name``; ValueError listing the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown optimizer family {name!r}; choose one of: {', '.join(sorted(FAMILIES))}") from None
