"""The page an emailed confirmation link opens: prove the address with one press, once.

The link itself does nothing on GET: mail scanners open links, and only the person should
confirm. The page's form posts the token back.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.errors import DomainError
from resolvers.email_proof import confirm_email
from web.reset import HEADERS, templates

MAX_TOKEN = 200


async def confirm_page(request: Request) -> Response:
    token = request.query_params.get("token", "")[:MAX_TOKEN]
    error = None
    done = False
    if request.method == "POST":
        form = await request.form()
        token = str(form.get("token", ""))[:MAX_TOKEN]
        try:
            await confirm_email(token)
            done = True
        except DomainError as failure:
            error = failure.message
    context = {"token": token, "error": error, "done": done}
    status = 400 if error else 200
    return templates.TemplateResponse(
        request, "confirm.html", context, status_code=status, headers=HEADERS
    )
