"""The optforge SDK: submit studies to an optforge service, watch them, and use what they found.

    from optforge.client import Client

    client = Client()                                   # $OPTFORGE_URL / $OPTFORGE_TOKEN, or localhost
    study = client.submit("examples/specs/digits_study.yaml")
    study.wait()                                        # a progress bar: trials, best so far, its family
    optimizer, scheduler = study.best().build(model)    # ready torch.optim objects for your own model

``AsyncClient`` is the same with ``await``. Errors are in :mod:`optforge.client.exceptions`. This
package needs only pydantic, httpx and PyYAML: it never imports torch, Ray or SQLAlchemy (``Best.build``
imports the engine when called, and needs ``pip install "optforge[all]"``).
"""

from optforge.client._async import AsyncClient, AsyncStudy, AsyncStudyList
from optforge.client._models import Best, Built, StudyEventPublic
from optforge.client._protocol import DEFAULT_URL, ENV_TOKEN, ENV_URL
from optforge.client._retry import NO_RETRIES, RetryPolicy
from optforge.client._sync import Client, Study, StudyList
from optforge.client.exceptions import (
    ApiError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    NotReady,
    OptforgeError,
    RateLimited,
    ServerError,
    StudyFailed,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)

__all__ = [
    "DEFAULT_URL",
    "ENV_TOKEN",
    "ENV_URL",
    "NO_RETRIES",
    "ApiError",
    "AsyncClient",
    "AsyncStudy",
    "AsyncStudyList",
    "Best",
    "Built",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "NotFound",
    "NotReady",
    "OptforgeError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Study",
    "StudyEventPublic",
    "StudyFailed",
    "StudyList",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimeout",
]
