"""optforge's database: studies, trials, metric curves, events, best configurations, users, learned optimizers.

The only package that imports SQLAlchemy. Callers hold a ``Storage`` and pass its unit of work to the
repository functions, which return ``optforge.spec`` records::

    from optforge.storage import Storage, repo

    storage = Storage.open()                       # or Storage.open("postgresql+psycopg://...")
    with storage.session() as s:
        study = repo.studies.create_study(s, spec=spec)

``optforge.storage.optuna_mirror`` (imports optuna) writes studies into Optuna's tables for optuna-dashboard.
"""

from sqlalchemy.orm import Session

from optforge.storage import repo
from optforge.storage.database import Storage
from optforge.storage.errors import (
    Conflict,
    InvalidTransition,
    LeaseLost,
    MigrationError,
    NotFound,
    StorageError,
    StorageUnavailable,
)
from optforge.storage.fingerprint import TaskFeatures, distance, task_features, task_fingerprint

__all__ = [
    "Conflict",
    "InvalidTransition",
    "LeaseLost",
    "MigrationError",
    "NotFound",
    "Session",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "TaskFeatures",
    "distance",
    "repo",
    "task_features",
    "task_fingerprint",
]
