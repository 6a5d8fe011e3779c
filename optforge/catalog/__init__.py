"""The torch-free catalog of optimizer families and learning-rate schedules.

The service's ``/families`` endpoint, the SDK, spec validation and the search space all read this one
registry; only ``optforge.engine`` turns an entry into a live torch optimizer.
"""

from optforge.catalog._family import Family, MupRule
from optforge.catalog._hparam import HParam, Value
from optforge.catalog._schedule import Schedule
from optforge.catalog.families import DEFAULT_SEARCH_FAMILIES, FAMILIES, get_family
from optforge.catalog.schedules import SCHEDULES, get_schedule

__all__ = [
    "DEFAULT_SEARCH_FAMILIES",
    "FAMILIES",
    "SCHEDULES",
    "Family",
    "HParam",
    "MupRule",
    "Schedule",
    "Value",
    "get_family",
    "get_schedule",
]
