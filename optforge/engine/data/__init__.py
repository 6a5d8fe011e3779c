"""Datasets that need no download: scikit-learn's bundled sets, synthetic teacher-student data,
char-level text, user files (.npz/.csv/.parquet) and user functions. See docs/engine.md."""

from optforge.engine.data._dataset import KINDS, Dataset, Kind
from optforge.engine.data._prepare import split_indices, standardize
from optforge.engine.data.load import clear_data_cache, load_data

__all__ = ["KINDS", "Dataset", "Kind", "clear_data_cache", "load_data", "split_indices", "standardize"]
