"""Request bodies, parsed once by the server's middleware and read by every handler.

discord.py sends JSON, or ``multipart/form-data`` with a ``payload_json`` part and ``files[n]`` parts when
it uploads attachments; both end up as the same ``Body``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Body:
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)


# Newer aiohttp wants typed keys for request storage; older versions take a plain string.
_KEY: Any = web.RequestKey("body", Body) if hasattr(web, "RequestKey") else "body"


async def parse_body(request: web.Request) -> Body:
    """Reads the body and keeps it on the request for ``json_of`` and ``files_of``."""
    body = Body()
    if request.content_type == "multipart/form-data":
        async for part in await request.multipart():
            if part.name == "payload_json":
                body.json = json.loads(await part.text())
            else:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                data = bytes(await part.read())
                body.files.append(UploadedFile(part.name or "", part.filename or "", content_type, data))
    else:
        raw = await request.read()
        if raw and request.content_type == "application/json":
            body.json = json.loads(raw)
        elif raw:
            body.json = raw.decode("utf-8", "replace")
    request[_KEY] = body
    return body


def json_of(request: web.Request) -> Any:
    """The request's JSON (or ``payload_json``); None when it had no body."""
    return request[_KEY].json


def files_of(request: web.Request) -> list[UploadedFile]:
    return request[_KEY].files
