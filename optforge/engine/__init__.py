"""The engine: builds a model, its data, its optimizer and schedule, and trains one trial.

``run_trial(task, config, report)`` is the entry the search and the CLI use; the pieces it is made of
(``load_data``, ``build_model``, ``build_optimizer``, ``build_scheduler``) are exported for callers
that assemble a training run themselves.
"""

from optforge.engine.data import Dataset, clear_data_cache, load_data
from optforge.engine.device import code_version, resolve_device
from optforge.engine.entrypoints import EntryPointError
from optforge.engine.optimizers import build_optimizer, evaluation_mode, make_stepper
from optforge.engine.schedules import build_scheduler, lr_factor
from optforge.engine.trainer import Report, run_trial
from optforge.engine.workloads import WorkloadScales, build_model

__all__ = [
    "Dataset",
    "EntryPointError",
    "Report",
    "WorkloadScales",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "clear_data_cache",
    "code_version",
    "evaluation_mode",
    "load_data",
    "lr_factor",
    "make_stepper",
    "resolve_device",
    "run_trial",
]
