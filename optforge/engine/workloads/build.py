"""``build_model``: a built-in workload or the user's model, sized by ``model.width`` and ``model.depth``."""

from __future__ import annotations

from torch import nn

from optforge.engine.data import Dataset
from optforge.engine.workloads.builtin import WorkloadScales, build_builtin
from optforge.engine.workloads.mup_build import build_builtin_mup, build_user_mup
from optforge.engine.workloads.user import build_user_model
from optforge.spec import TaskSpec


def build_model(task: TaskSpec, data: Dataset, *, mup: bool = False) -> nn.Module:
    """The model ``task.model`` describes, sized for ``data`` (input shape and number of outputs).

    Built-in workloads mark their input and readout layers for parameter routing; a user model's roles
    are inferred (see :mod:`optforge.engine.routing`). ``mup=True`` returns the model in μP relative to
    ``task.model.base_width`` (see :mod:`optforge.engine.mup`): this is the one way to get a μP model,
    and ``build_optimizer`` reads the μP learning-rate multipliers it records. Raises SpecError for a
    model that cannot read the data, bad ``model.kwargs`` or a model μP cannot handle, EntryPointError
    for a broken user factory. Initialization uses torch's global RNG: seed it first for a reproducible
    model; under μP the same seed gives the same weights as SP, apart from the μP rescaling.
    """
    if task.model.entrypoint is not None:
        return build_user_mup(task.model, data) if mup else build_user_model(task.model, data)
    if mup:
        return build_builtin_mup(task.model, data)
    return build_builtin(task.model, data, WorkloadScales())
