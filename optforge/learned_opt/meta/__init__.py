"""Meta-training the learned optimizer: PES over truncated unrolls of small μP MLP tasks, on Ray.

:class:`~optforge.learned_opt.meta.spec.MetaTrainSpec` describes a run (YAML, ``optforge meta-train``);
:class:`~optforge.learned_opt.meta.trainer.MetaTrainer` runs it. Submodules are imported where used.
"""
