"""``MetaTrainSpec``: everything one meta-training run needs, loadable from YAML (``optforge meta-train SPEC``).

Defaults are the scaled-down CPU recipe that produced the shipped ``mulo_v1`` weights (see
``optforge/learned_opt/configs/mulo_v1.yaml`` and docs/learned_opt.md); the paper's GPU recipe is noted
next to each field where it differs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from optforge.spec._base import StrictModel

MetaDataset = Literal["digits", "teacher_student_classification", "teacher_student_regression"]


class TaskDistribution(StrictModel):
    """The inner tasks: μP (or SP) MLPs on bundled or synthetic data, each trained for a random horizon."""

    widths: tuple[int, int] = Field((32, 128), description="hidden width, drawn log-uniformly in [low, high]")
    depths: tuple[int, int] = Field((2, 4), description="hidden layers, drawn uniformly in [low, high]")
    datasets: tuple[MetaDataset, ...] = ("digits", "teacher_student_classification", "teacher_student_regression")
    # Synthetic tasks draw their teacher from this many data seeds: variety without an endless data cache.
    data_seeds: int = Field(4, ge=1, le=1000)
    # The paper unrolls 100-1000 steps; a 2-CPU budget affords 50-200 (the benchmark then tests 5x longer).
    horizons: tuple[int, int] = Field((50, 200), description="inner steps per episode, drawn log-uniformly")
    batch_size: int = Field(64, ge=1, le=4096)
    base_width: int = Field(128, ge=1, description="μP base width of the tasks (and of μ(p)); the engine's default")

    @model_validator(mode="after")
    def _ordered(self) -> TaskDistribution:
        for name in ("widths", "depths", "horizons"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be [low, high] with 1 <= low <= high, got [{low}, {high}]")
        if not self.datasets:
            raise ValueError("datasets must name at least one dataset")
        return self


class OuterSpec(StrictModel):
    """Persistent evolution strategies (PES) and the outer optimizer (AdamW, warmup + cosine, clipped)."""

    steps: int = Field(300, ge=1, description="outer (meta) steps; the paper ran 5000")
    truncation: int = Field(50, ge=1, description="inner steps per truncated unroll (paper: 50)")
    n_tasks: int = Field(8, ge=1, description="antithetic pairs per outer step, each on its own task (paper: 8)")
    sigma: float = Field(0.01, gt=0, description="ES perturbation std (paper: 0.01)")
    lr: float = Field(3e-3, gt=0, description="peak outer LR (paper: 3e-3)")
    min_lr: float = Field(1e-3, ge=0, description="cosine floor of the outer LR (paper: 1e-3)")
    warmup_steps: int = Field(20, ge=0, description="linear warmup of the outer LR")
    clip_norm: float = Field(1.0, gt=0, description="the gradient estimate is clipped to this global norm (paper: 1)")
    # AdamW without decay: shrinking θ towards 0 would bias the learned rule towards zero updates.
    weight_decay: float = Field(0.0, ge=0)
    meta_loss_cap: float = Field(
        2.0, gt=0, description="per-step meta-loss cap, as a multiple of the episode's initial loss (NaN counts as it)"
    )


class EvalSpec(StrictModel):
    """A fixed set of tasks run with the unperturbed θ: the comparable meta-loss curve."""

    every: int = Field(25, ge=1, description="outer steps between evaluations (also at step 0 and the end)")
    n_tasks: int = Field(4, ge=1)
    horizon: int | None = Field(
        None, ge=1, description="inner steps per evaluation task (default: the longest horizon)"
    )


class MetaTrainSpec(StrictModel):
    """One meta-training run of the learned optimizer."""

    name: str = Field("mulo", min_length=1, description="the learned optimizer's name (checkpoints, storage)")
    parametrization: Literal["mup", "sp"] = Field("mup", description="mup: μLO on μP tasks; sp: the SP baseline")
    init: Literal["adam_like", "random"] = Field(
        "adam_like",
        description="adam_like: start the update network at a per-tensor normalized Adam step (network.py); "
        "random: the paper's random init (needs the paper's thousands of outer steps)",
    )
    # d = gain x (m / sqrt(v)) at the start: 0.1 x 0.01 (μLO) = 1 x 0.001 (SP) = a 1e-3 normalized Adam step at
    # the base width, which trained the 32-512 wide tasks well in a sweep over 0.3x/1x/3x (docs/learned_opt.md).
    init_gain: float | None = Field(None, gt=0, description="adam_like init's direction gain (default 0.1 mup, 1 sp)")
    tasks: TaskDistribution = Field(default_factory=TaskDistribution)
    outer: OuterSpec = Field(default_factory=OuterSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    seed: int = Field(0, ge=0)
    output_dir: str = Field("runs/mulo", description="checkpoints, the JSONL log, the plot and the final weights")
    checkpoint_every: int = Field(10, ge=1, description="outer steps between checkpoints (and at the end)")
    workers: int = Field(2, ge=0, description="Ray workers for the antithetic pairs; 0 runs them in this process")
    ray_address: str | None = Field(
        None, description="an existing Ray cluster ('auto', 'ray://...'); None starts a local one"
    )

    @property
    def gain(self) -> float:
        if self.init_gain is not None:
            return self.init_gain
        return 0.1 if self.parametrization == "mup" else 1.0

    @property
    def eval_horizon(self) -> int:
        return self.eval.horizon or self.tasks.horizons[1]
