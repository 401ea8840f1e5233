"""JSON responses, serialized once with orjson."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSONValue


def json_response(body: JSONValue, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(e: errors.ApiError) -> Response:
    return json_response(e.status(), e.code, e.headers)
