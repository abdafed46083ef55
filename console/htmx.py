"""htmx request and response helpers: fragment or full page, HX-Redirect, HX-Trigger."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response


def is_htmx(request: Request) -> bool:
    """An htmx request that swaps part of a page (a history restore wants the whole page)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def redirect(request: Request, url: str) -> Response:
    """Go to url: htmx is told to navigate (HX-Redirect), a plain form gets a 303."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def trigger(response: Response, *events: str) -> Response:
    """Fire client events after the swap, e.g. to refresh the event log."""
    response.headers["HX-Trigger"] = json.dumps(dict.fromkeys(events, True))
    return response
