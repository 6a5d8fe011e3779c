"""The strict pydantic base every optforge spec derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown fields and re-validates on assignment.

    Rejecting unknown fields is what turns a typo such as ``stpes: 100`` into an error that names the
    field instead of a silently ignored key.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
