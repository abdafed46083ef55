"""The page an emailed reset link opens: choose a new password, once."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from core.errors import DomainError
from core.security import PASSWORD_RULE
from resolvers.auth import reset_password

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",  # the URL carries the reset token
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


async def reset_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    error = None
    done = False
    if request.method == "POST":
        form = await request.form()
        token = str(form.get("token", ""))
        password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
        if password != confirm:
            error = "The two passwords differ."
        else:
            try:
                await reset_password(token, password)
                done = True
            except DomainError as failure:
                error = failure.message
    context = {"token": token, "error": error, "done": done, "rule": PASSWORD_RULE}
    status = 400 if error else 200
    return templates.TemplateResponse(
        request, "reset.html", context, status_code=status, headers=HEADERS
    )
