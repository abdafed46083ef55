"""The files phones read to let the keybin app open keybin's links (universal and app links).

Apple fetches /.well-known/apple-app-site-association and Android
/.well-known/assetlinks.json, both as JSON with no redirect. Without the settings naming
the apps there is nothing to advertise, and both answer 404.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from settings import Settings

# The links an app opens itself: an invitation (signup) and an email confirmation.
APP_PATHS = ("/signup", "/confirm-email")
# Phones and Apple's CDN fetch these rarely; an hour keeps a changed setting close.
CACHE = {"Cache-Control": "public, max-age=3600"}


def apple_app_site_association(settings: Settings) -> dict[str, Any] | None:
    if not settings.apple_app_ids:
        return None
    components = [{"/": f"{path}*"} for path in APP_PATHS]
    apps = {"appIDs": list(settings.apple_app_ids), "components": components}
    return {"applinks": {"details": [apps]}}


def asset_links(settings: Settings) -> list[dict[str, Any]] | None:
    if not settings.android_package:
        return None
    return [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": settings.android_package,
                "sha256_cert_fingerprints": list(settings.android_cert_sha256),
            },
        }
    ]


async def apple_document(request: Request) -> Response:
    return _answer(apple_app_site_association(request.app.state.settings))


async def android_document(request: Request) -> Response:
    return _answer(asset_links(request.app.state.settings))


def _answer(document: dict[str, Any] | list[dict[str, Any]] | None) -> Response:
    if document is None:
        return PlainTextResponse("Not Found", status_code=404)
    return JSONResponse(document, headers=CACHE)
