"""Rendering: Jinja2 templates, a full page or the htmx fragment of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from console import csrf, session
from console.htmx import is_htmx
from resolvers.phones import display_phone
from resolvers.support import QUERY_MAX_LENGTH

TEMPLATES = Path(__file__).parent / "templates"


def _shared(request: Request) -> dict[str, Any]:
    return {
        "base": str(request.scope.get("root_path", "")),
        "csrf_token": csrf.token(request),
        # Set by auth.staff_required alone, to the signed-in member; pages outside it have none.
        "staff": getattr(request.state, "staff", None),
        # Cut as the search cuts it: what the page repeats is what was searched.
        "query": request.query_params.get("q", "")[:QUERY_MAX_LENGTH],
        "query_max_length": QUERY_MAX_LENGTH,
    }


def _localtime(value: Any) -> str:
    """Times are shown in UTC with the zone said, so staff in any office read them alike."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def _zoned(value: Any, zone: str) -> str:
    """A time to the second in the account's own zone (an account event, read with the caller)."""
    if value is None:
        return ""
    return str(value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z"))


_env = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), trim_blocks=True
)
_env.filters["when"] = _localtime
_env.filters["phone"] = lambda value: display_phone(value) if value else ""
_env.filters["when_in"] = _zoned
templates = Jinja2Templates(env=_env, context_processors=[_shared])


def render(
    request: Request,
    page: str,
    context: dict[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The fragment template for an htmx swap when one is given, otherwise the full page."""
    name = fragment if fragment is not None and is_htmx(request) else page
    context = dict(context or {})
    if name == page:
        context["flash"] = session.pop_flash(request)  # shown once, on a whole page
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response
