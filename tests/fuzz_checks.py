"""schemathesis checks for keybin: loaded by the fuzz test with SCHEMATHESIS_HOOKS.

schemathesis' own GraphQL server-error check counts every error with a `path`
as a crash; keybin answers access and input problems that way on purpose
(UNAUTHENTICATED, FORBIDDEN, INVALID_INPUT). A real failure is a 5xx, an
INTERNAL (masked unexpected) error, or an error without a code from a resolver.
"""

from __future__ import annotations

from typing import Any

import schemathesis

EXPECTED_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "INVALID_INPUT", "NOT_IMPLEMENTED"}


@schemathesis.check
def keybin_no_unexpected_error(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    body = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code == "INTERNAL" or (code is None and "path" in error):
            raise AssertionError(f"unexpected error: {error}")
        if code is not None and code not in EXPECTED_CODES:
            raise AssertionError(f"unknown error code: {error}")
