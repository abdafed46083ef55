"""The console's ASGI app: routes, static files, the session cookie and security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.convertors import register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from console import audit_pages, auth, billing_pages, csrf, oidc, params, routes
from console.headers import SecurityHeaders
from console.pages import render
from console.session import SessionCookies
from resolvers.ratelimit import RateLimiter
from settings import Settings

STATIC = Path(__file__).parent / "static"
# `{name:id}`: an id too large for the id columns matches no route (a 404), so no query is
# ever made with it (on PostgreSQL that would fail, the columns being 32-bit).
register_url_convertor("id", params.IdConvertor())


def _get(path: str, endpoint: csrf.Endpoint) -> Route:
    return Route(path, endpoint, methods=["GET"])


def _post(path: str, endpoint: csrf.Endpoint) -> Route:
    # Every unsafe route is built here, so none can miss the CSRF check.
    return Route(path, csrf.protect(endpoint), methods=["POST"])


async def favicon(request: Request) -> Response:
    # Pages link the SVG; this answers browsers that ask for the old name all the same.
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


def console_routes() -> list[BaseRoute]:
    account = "/accounts/{account_id:id}"
    return [
        _get("/", routes.home),
        _get("/login", auth.login_page),
        _post("/login", auth.login),
        # The company sign-in: plain GETs (the provider redirects back); the state guards them.
        _get("/oidc/start", oidc.start),
        _get("/oidc/callback", oidc.callback),
        _post("/logout", auth.logout),
        _get("/password", auth.password_page),
        _post("/password", auth.change_password),
        _get("/search", routes.search),
        _get(account, routes.account_page),
        _get(account + "/events", routes.event_log),
        _get(account + "/email", routes.email_row),
        _get(account + "/email/edit", routes.email_edit),
        _post(account + "/email", routes.email_save),
        _post(account + "/security-answers", routes.reveal_answers),
        _post(account + "/devices/{device_id:id}/remove", routes.remove_device),
        _post(account + "/payment-link", billing_pages.send_link),
        _get(account + "/delete", routes.delete_confirm),
        _post(account + "/delete", routes.delete_account),
        _get("/staff", routes.staff_list),
        _get("/staff/{staff_id:id}/disable", routes.staff_disable_confirm),
        _post("/staff/{staff_id:id}/{action:str}", routes.staff_set_disabled),
        _get("/audit", audit_pages.audit_page),
        _get("/audit.csv", audit_pages.audit_csv),
        _get("/favicon.ico", favicon),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)  # noqa: S101  (registered for HTTPException only)
    if error.status_code == 405:
        return Response("Method not allowed", status_code=405)
    context = {"status": error.status_code, "detail": error.detail}
    return render(request, "error.html", context, status_code=error.status_code)


def create_console(settings: Settings) -> Starlette:
    """The console app, to be mounted at /console; its cookies are confined to it."""
    console = Starlette(
        routes=console_routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionCookies, secure=settings.production),
        ],
        exception_handlers={HTTPException: http_error},
    )
    console.state.settings = settings
    console.state.identity_provider = oidc.identity_provider(settings)
    # Staff sign-in by password and code: the same limits as the API's sign-in, per client
    # address and per address typed, counted in the database across instances.
    console.state.limiter = RateLimiter(
        settings.secret_key,
        settings.rate_limit_per_minute,
        settings.rate_limit_per_account_per_minute,
    )
    return console
