"""What to train: the model, the data, and the budget of one training run."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from optforge.spec._base import StrictModel

ENTRYPOINT_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")

BuiltinModel = Literal["mlp", "cnn", "transformer"]
BuiltinData = Literal[
    "digits",
    "breast_cancer",
    "wine",
    "iris",
    "diabetes",
    "teacher_student_regression",
    "teacher_student_classification",
    "text",
    "arrays",
]
IMAGE_DATA = ("digits",)
TEXT_DATA = ("text",)


def _check_entrypoint(value: str | None) -> str | None:
    if value is not None and not ENTRYPOINT_PATTERN.match(value):
        raise ValueError(f"entry point {value!r} must look like 'package.module:function'")
    return value


class ModelSpec(StrictModel):
    """A built-in workload (``name``) or the user's own factory (``entrypoint``), never both.

    ``width`` and ``depth`` are the knobs μTransfer turns: the same spec built narrow is the proxy,
    built wide is the target. A user factory receives them when its signature asks for them.
    """

    name: BuiltinModel | None = None
    entrypoint: str | None = Field(None, description="'package.module:function' returning an nn.Module")
    width: int = Field(128, ge=1, le=65536, description="hidden width (channels for cnn, d_model for transformer)")
    depth: int = Field(2, ge=1, le=64, description="hidden layers (blocks for cnn and transformer)")
    # μP is defined relative to this width: there μP equals the standard parametrization. 128 is the
    # default width, so a default-sized model trains the same with or without μP and the catalog's LR
    # ranges (set on SP models of about this size) stay centred. A proxy and its target share it.
    base_width: int = Field(128, ge=1, le=65536, description="μP: the width at which μP equals SP")
    # False: the readout keeps SP's init variance of the base width (TP5 Table 3, mup.MuReadout's default).
    # A zero readout left the char transformer on a unigram plateau for most of a 150-step run (docs/mup.md).
    zero_readout: bool = Field(False, description="μP: start the readout at zero")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for the builder")

    _validate_entrypoint = field_validator("entrypoint")(_check_entrypoint)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if self.name is not None and self.entrypoint is not None:
            raise ValueError("give either model.name or model.entrypoint, not both")
        if self.name is None and self.entrypoint is None:
            self.name = "mlp"
        return self


class DataSpec(StrictModel):
    """A bundled, synthetic, file or user-provided dataset with a deterministic train/validation split."""

    name: BuiltinData | None = None
    entrypoint: str | None = Field(None, description="'package.module:function' returning the arrays")
    path: str | None = Field(
        None,
        max_length=4096,  # PATH_MAX on Linux: anything longer cannot name a file
        description="text file for 'text'; .npz, .csv or .parquet for 'arrays'",
    )
    target: str | None = Field(None, description="target column of a .csv/.parquet file (default: the last)")
    n_samples: int = Field(4096, ge=16, le=10_000_000, description="synthetic datasets only")
    n_features: int = Field(32, ge=1, le=100_000, description="synthetic datasets only")
    n_classes: int = Field(10, ge=2, le=100_000, description="teacher_student_classification only")
    difficulty: float = Field(1.0, gt=0, le=100, description="synthetic: teacher depth/noise scale")
    seq_len: int = Field(64, ge=2, le=65536, description="text: characters per training sequence")
    max_chars: int | None = Field(None, ge=1000, description="text: truncate the corpus to this many characters")
    val_fraction: float = Field(0.2, gt=0, lt=1)
    # The data's own seed, apart from TaskSpec.seed: re-running a trial with another seed varies the
    # init and batch order but keeps the teacher and the validation split, so every run is ranked alike.
    seed: int = Field(0, ge=0, le=2**31 - 1, description="synthetic teacher and samples, train/validation split")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    _validate_entrypoint = field_validator("entrypoint")(_check_entrypoint)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if self.name is not None and self.entrypoint is not None:
            raise ValueError("give either data.name or data.entrypoint, not both")
        if self.name is None and self.entrypoint is None:
            self.name = "digits"
        if self.name == "arrays" and self.path is None:
            raise ValueError("data.path is required when data.name is 'arrays' (.npz, .csv or .parquet)")
        return self


class TaskSpec(StrictModel):
    """One training problem and its budget: everything a trial needs except the optimizer."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    batch_size: int = Field(64, ge=1, le=65536)
    steps: int = Field(200, ge=1, le=10_000_000, description="optimizer steps; the schedule horizon")
    eval_every: int = Field(20, ge=1, description="evaluate on the validation split every k steps")
    max_eval_examples: int = Field(2048, ge=1, description="cap on validation examples per evaluation")
    metric: Literal["val_loss", "val_accuracy", "train_loss"] = "val_loss"
    target: float | None = Field(None, description="metric value that counts as 'reached' for time-to-target")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 autocast, CUDA only")
    compile: bool = Field(False, description="torch.compile the model (CUDA only)")
    divergence_factor: float = Field(10.0, gt=1, description="diverged when loss > factor x initial loss")

    @property
    def mode(self) -> Literal["min", "max"]:
        """Whether the metric is minimized or maximized."""
        return "max" if self.metric == "val_accuracy" else "min"

    @model_validator(mode="after")
    def _compatible(self) -> TaskSpec:
        model, data = self.model.name, self.data.name
        if model == "transformer" and data is not None and data not in TEXT_DATA:
            raise ValueError(f"model.name 'transformer' needs data.name 'text', got {data!r}")
        if data in TEXT_DATA and model is not None and model != "transformer":
            raise ValueError(f"data.name 'text' needs model.name 'transformer', got {model!r}")
        if model == "cnn" and data is not None and data not in (*IMAGE_DATA, "arrays"):
            raise ValueError(f"model.name 'cnn' needs image data ('digits' or 'arrays'), got {data!r}")
        if self.eval_every > self.steps:
            self.eval_every = self.steps
        return self
