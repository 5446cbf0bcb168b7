"""An HTTP response built in full before any byte is sent."""

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    """Return a response with `body` as UTF-8 JSON. Values that JSON lacks become strings."""
    data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    return Response(status, "application/json", data, dict(headers or {}))
