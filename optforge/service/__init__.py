"""The optforge service: a FastAPI app (``create_app``) that queues studies and runs them on Ray.

See docs/service.md for the endpoints, auth, limits and scheduler semantics.
"""

from optforge.service.app import ServiceStartupError, create_app

__all__ = ["ServiceStartupError", "create_app"]
