"""The web status page: studies live, families compared, the best configuration to take away.

``install(app)`` adds the pages (``/``, ``/studies/{id}``, ``/learned``), their data routes
(``/web-api/...``, see :mod:`optforge.service.web.data`) and the static files (``/static``: the page's
JavaScript and CSS, and the vendored Apache ECharts, so nothing is fetched from the internet).
``create_app`` calls it. See docs/web.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from optforge.service.web import data, pages
from optforge.service.web.data import AnalysisCache

STATIC_DIR = Path(__file__).parent / "static"


class RevalidatedStaticFiles(StaticFiles):
    """Static files that browsers revalidate on every load (a 304 when unchanged), so an upgraded service
    never runs against yesterday's cached JavaScript; the JavaScript modules import each other by plain
    paths, which a version query on the page's own tags would not reach."""

    def file_response(
        self, full_path: os.PathLike, stat_result: os.stat_result, scope: Any, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI) -> None:
    """Mount the status page on ``app``: pages, data routes, static files, and the analysis cache."""
    app.state.web_analysis_cache = AnalysisCache()
    app.include_router(pages.router)
    app.include_router(data.router)
    app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")


__all__ = ["STATIC_DIR", "install"]
