"""Bearer-key authentication for every API request."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def authorized(request: Request, admin_key: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return hmac.compare_digest(token.strip().encode(), admin_key.encode())
