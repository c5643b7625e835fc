"""Discord-shaped error responses, and the JSON response helper the REST handlers share.

discord.py parses a body as JSON only when ``Content-Type`` is exactly ``application/json`` (aiohttp's
``json_response`` adds ``; charset=utf-8``, so it is not used), and reads ``code``, ``message`` and the
nested ``errors`` of a failed request into ``HTTPException``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)


class ApiError(Exception):
    """An error Discord would answer with; the server's middleware renders it."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(f"{status} {message} (code {code})")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: dict = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, self.status)


def unknown(what: str, code: int) -> ApiError:
    """404 for a missing object, e.g. ``unknown("Message", 10008)``."""
    return ApiError(404, code, f"Unknown {what}")


def invalid_form(field: str, code: str, message: str) -> ApiError:
    """400 Invalid Form Body naming one field, the way Discord nests it (``a.b`` -> ``{"a": {"b": ...}}``)."""
    errors: dict = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field.split(".")):
        errors = {part: errors}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def unauthorized() -> ApiError:
    return ApiError(401, 0, "401: Unauthorized")


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


def empty_message() -> ApiError:
    return ApiError(400, 50006, "Cannot send an empty message")


def already_acknowledged() -> ApiError:
    return ApiError(400, 40060, "Interaction has already been acknowledged.")
