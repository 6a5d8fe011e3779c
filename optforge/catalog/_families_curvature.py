"""Geometry-aware families: matrix (spectral) preconditioners and a diagonal-Hessian method.

Muon and Kron normalize each weight matrix's update as a whole, so μP scales their hidden LRs by
sqrt(fan_out/fan_in) (``mup_rule="spectral"``). AdaMuon (rescaled to Adam's RMS), Shampoo (AdaGrad-grafted)
and SOAP (Adam in Shampoo's eigenbasis) end up normalized entry-wise, and the coordinate check
(docs/mup.md) shows them flat under the adaptive rule, so they use ``mup_rule="adaptive"``. Muon and AdaMuon touch 2-D hidden
weights only and give everything else to an AdamW part; Shampoo, SOAP and Kron precondition every tensor
(1-D tensors with a diagonal or Adam-like rule). Sophia clips a Hessian-preconditioned update per
coordinate and needs ``backward(create_graph=True)`` on its Hessian steps.
"""

from __future__ import annotations

from optforge.catalog._families_common import adam_betas, adam_lr, decoupled_decay, fixed_betas
from optforge.catalog._family import Family
from optforge.catalog._hparam import HParam, beta, choice, eps, lr, number


def _ns_steps() -> HParam:
    return number(
        "ns_steps",
        5,
        kind="int",
        valid=(1, 20),
        searched=False,
        doc="Newton-Schulz iterations (5 orthogonalize well enough; Jordan et al. 2024)",
    )


def _aux_adamw_lr() -> HParam:
    return lr(3e-3, 3e-4, 1e-2, doc="AdamW LR for embeddings, readout, norms and biases").model_copy(
        update={"name": "adamw_lr"}
    )


CURVATURE_FAMILIES: tuple[Family, ...] = (
    Family(
        name="muon",
        constructor="optforge.engine.optimizers.muon:build",
        implementation="torch.optim.Muon + torch.optim.AdamW",
        routing="hidden_matrices",
        mup_rule="spectral",
        pack_betas=False,
        hparams=(
            lr(0.02, 5e-3, 5e-2, doc="Muon LR for 2-D hidden weights"),  # Keller Jordan's reference default
            choice("momentum", 0.95, (0.9, 0.95), "Nesterov momentum of the orthogonalized update"),
            number("weight_decay", 0.0, valid=(0, 10), searched=False, doc="decoupled weight decay on hidden weights"),
            _ns_steps(),
            _aux_adamw_lr(),
        ),
        state_per_param="1 (2-D hidden) / 2 (rest, AdamW)",
        reference="Jordan et al. 2024, 'Muon: An optimizer for hidden layers' (torch.optim.Muon)",
        notes="2-D hidden weights only; embeddings, readout, norms and biases use an auxiliary AdamW",
    ),
    Family(
        name="adamuon",
        constructor="optforge.engine.optimizers.adamuon:build",
        implementation="pytorch_optimizer.AdaMuon",
        routing="hidden_matrices",
        mup_rule="adaptive",  # its update ends entry-wise normalized: the coordinate check in docs/mup.md
        pack_betas=False,
        hparams=(
            # pytorch-optimizer's default. Its update is rescaled to RMS 0.2 (Moonlight's shape factor), which is
            # below Adam's early-training RMS of about 1, hence an LR above AdamW's.
            lr(0.02, 3e-3, 1e-1, doc="AdaMuon LR for 2-D hidden weights"),
            *fixed_betas(0.9, 0.95),  # momentum and the second moment of the orthogonalized update
            number("weight_decay", 0.0, valid=(0, 10), searched=False, doc="decoupled weight decay"),
            _ns_steps(),
            _aux_adamw_lr(),
            eps(1e-10),
        ),
        state_per_param="2 (2-D hidden) / 2 (rest, AdamW)",
        reference="Si et al. 2025, 'AdaMuon: Adaptive Muon Optimizer'",
        notes="2-D hidden weights only; the rest uses AdaMuon's built-in AdamW",
    ),
    Family(
        name="shampoo",
        # ScalableShampoo is the grafted, blocked Shampoo of Anil et al. (the design behind the AlgoPerf-winning
        # Distributed Shampoo). pytorch-optimizer's plain Shampoo (Gupta et al. 2018) ran into non-finite SVDs
        # within 300 steps on a tiny MLP at its own defaults, so it is not offered.
        constructor="pytorch_optimizer:ScalableShampoo",
        mup_rule="adaptive",  # its update ends entry-wise normalized: the coordinate check in docs/mup.md
        # AdaGrad grafting: the layer-wise step size comes from AdaGrad, which starts at the scale of sign(g);
        # the library's RMSProp graft has no bias correction and starts about 30x too large at β2 = 0.999.
        # graft_type 2 = LayerWiseGrafting.ADAGRAD.
        fixed={"graft_type": 2, "decoupled_weight_decay": True},
        hparams=(
            adam_lr(),  # grafting gives the update AdaGrad's scale, so Adam's LR range applies
            *adam_betas(),
            decoupled_decay(),
            # Preconditioning starts at step 25 (the library default) and the inverse roots are refreshed every
            # 25 steps: cheap at optforge's model sizes; Anil et al. refresh every ~1000 on huge models.
            number(
                "start_preconditioning_step",
                25,
                kind="int",
                valid=(1, 10**9),
                searched=False,
                doc="steps of grafted (first-order) updates before preconditioning begins",
            ),
            number(
                "preconditioning_compute_steps",
                25,
                kind="int",
                valid=(1, 10**9),
                searched=False,
                doc="steps between inverse-root recomputations",
            ),
            number(
                "block_size",
                512,
                kind="int",
                valid=(1, 10**6),
                searched=False,
                doc="larger matrices are preconditioned in blocks of this size",
            ),
        ),
        state_per_param="3 + (m² + n²)×2 per m×n block",
        reference="Anil et al. 2020, 'Scalable Second Order Optimization for Deep Learning' (Gupta et al. 2018)",
        notes=(
            "AdaGrad grafting (graft_type=2); its state holds PreConditioner/Graft objects: load checkpoints "
            "with torch.load(weights_only=False)"
        ),
    ),
    Family(
        name="soap",
        constructor="pytorch_optimizer:SOAP",
        mup_rule="adaptive",  # its update ends entry-wise normalized: the coordinate check in docs/mup.md
        hparams=(
            lr(3e-3, 1e-3, 1e-2),  # the reference implementation's 3e-3
            *fixed_betas(0.95, 0.95),  # the reference implementation's
            decoupled_decay(0.01),  # the reference implementation's
            # The paper finds quality degrades slowly as eigenbasis refreshes get rarer; searched because the best
            # compute/quality trade-off depends on the step budget.
            number(
                "precondition_frequency",
                10,
                2,
                100,
                kind="int",
                valid=(1, 10**6),
                doc="steps between eigenbasis refreshes",
            ),
            eps(1e-8),
        ),
        state_per_param="2 + (m² + n²)×2 per m×n matrix",
        reference="Vyas et al. 2024, 'SOAP: Improving and Stabilizing Shampoo using Adam'",
    ),
    Family(
        name="kron",
        constructor="pytorch_optimizer:Kron",
        mup_rule="spectral",
        pack_betas=False,
        hparams=(
            # The preconditioned update is RMS-clipped to at most 1.1, so the LR acts like Lion's/Adam's at
            # the low end; 1e-3 is the reference implementation's default.
            lr(1e-3, 1e-4, 1e-2),
            number(
                "momentum",
                0.9,
                0.8,
                0.99,
                scale="log1m",
                valid=(0, 1),
                valid_open=(False, True),
                doc="EMA of the gradient that is preconditioned",
            ),
            decoupled_decay(),
        ),
        state_per_param="1 + m² + n² per m×n matrix (triangular Kronecker factors)",
        reference="Li 2018, 'Preconditioner on Matrix Lie Group for SGD' (PSGD Kron, pytorch-optimizer)",
        notes="preconditioner updates are random: seed numpy and torch for reproducible runs",
    ),
    Family(
        name="sophia",
        constructor="pytorch_optimizer:SophiaH",
        needs_create_graph=True,
        hparams=(
            # Update = lr · clip(m / max(h, eps), ±p): lr·p is the largest per-coordinate step (6e-4 at the
            # defaults, AdamW's scale for GPT-2) and p plays the paper's γ (0.01-0.05).
            lr(0.06, 1e-2, 0.3),
            beta("beta1", 0.96, 0.9, 0.99),
            beta("beta2", 0.99, searched=False, doc="EMA of the Hessian diagonal estimates"),
            number(
                "p",
                0.01,
                0.01,
                0.05,
                valid=(0, 10),
                valid_open=(True, False),
                doc="clip of the Hessian-preconditioned update (the paper's γ)",
            ),
            number(
                "update_period",
                10,
                kind="int",
                valid=(1, 10**6),
                searched=False,
                doc="steps between Hutchinson Hessian estimates (the paper's k = 10)",
            ),
            decoupled_decay(),
            eps(1e-12),
        ),
        state_per_param="3",
        reference="Liu et al. 2024, 'Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training'",
        notes="SophiaH: Hutchinson estimates need backward(create_graph=True) on Hessian steps; unstable on long runs",
    ),
)
