"""One module per resource; :mod:`optforge.service.api.router` mounts them under ``/api/v1``."""
