"""The status page's HTML: ``/`` (studies), ``/studies/{id}`` (one study) and ``/learned`` (learned optimizers).

Templates render the page's structure: headings, panels, labelled controls, and what the server knows
without a token (the auth mode, the study id). The data comes from the API in the browser, with the
user's token, so a page never shows what its viewer may not see; the HTML itself holds nothing private
and needs no token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from optforge.service.api.deps import StateDep
from optforge.service.api.routes.health import optforge_version

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)


async def _page(request: Request, state: StateDep, template: str, **context: object) -> HTMLResponse:
    auth = state.auth
    is_open = auth.open_mode if auth.mode_is_fresh() else await anyio.to_thread.run_sync(lambda: auth.open_mode)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "auth_mode": "open" if is_open else "token",
            "root": request.scope.get("root_path", ""),  # behind a proxy that mounts the service under a path
            "version": optforge_version(),
            **context,
        },
    )


@router.get("/", response_class=HTMLResponse)
async def studies_page(request: Request, state: StateDep) -> HTMLResponse:
    """Every study with its progress, best result and timing, updated live."""
    return await _page(request, state, "studies.html", page="studies")


@router.get("/studies/{study_id}", response_class=HTMLResponse)
async def study_page(
    request: Request, state: StateDep, study_id: Annotated[int, PathParam(ge=1, le=2**62)]
) -> HTMLResponse:
    """One study: curves, comparisons, importance, trials, the best configuration and a cancel button."""
    return await _page(request, state, "study.html", page="study", study_id=study_id)


@router.get("/learned", response_class=HTMLResponse)
async def learned_page(request: Request, state: StateDep) -> HTMLResponse:
    """Learned-optimizer meta-training runs with their meta-loss curves and checkpoints."""
    return await _page(request, state, "learned.html", page="learned")
