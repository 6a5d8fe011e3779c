"""Built-in workloads (mlp, cnn, transformer) and user models, each sized by width and depth."""

from optforge.engine.workloads.build import build_model
from optforge.engine.workloads.builtin import WorkloadScales, build_builtin
from optforge.engine.workloads.cnn import ResNet
from optforge.engine.workloads.mlp import MLP
from optforge.engine.workloads.transformer import Transformer, default_heads
from optforge.engine.workloads.user import build_user_model, expected_output_shape

__all__ = [
    "MLP",
    "ResNet",
    "Transformer",
    "WorkloadScales",
    "build_builtin",
    "build_model",
    "build_user_model",
    "default_heads",
    "expected_output_shape",
]
