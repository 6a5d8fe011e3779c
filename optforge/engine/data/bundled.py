"""scikit-learn's bundled datasets (shipped with the package, nothing is downloaded)."""

from __future__ import annotations

from optforge.engine.data._dataset import Dataset
from optforge.engine.data._prepare import from_arrays
from optforge.spec import DataSpec

# name -> (sklearn loader, kind); digits are kept as 1x8x8 images so the cnn can read them (the mlp flattens).
BUNDLED = {
    "digits": ("load_digits", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


def load_bundled(spec: DataSpec, *, seed: int) -> Dataset:
    """One of :data:`BUNDLED`, split by ``seed`` and standardized with train statistics."""
    import sklearn.datasets  # deferred: importing scikit-learn costs about a second

    loader, kind = BUNDLED[spec.name or ""]
    x, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    if spec.name == "digits":
        x = x.reshape(-1, 1, 8, 8)
    return from_arrays(spec.name or "", x, y, seed=seed, val_fraction=spec.val_fraction, kind=kind)
