"""Plain JSON over HTTP (urllib) for the small outside APIs — Prometheus, PagerDuty — with the
adapters' conventions: a timeout on every request, retries decided by bot/adapters/retry.py, and
failures translated into bot/adapters/errors.py, raised `from` the library's exception."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.errors import (
    AdapterError,
    Forbidden,
    Invalid,
    NotFound,
    PermanentError,
    TemporaryError,
    Unauthorized,
)
from bot.adapters.retry import RetryPolicy, call_with_retries

_BY_STATUS: dict[int, type[PermanentError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    422: Invalid,
}


@dataclass(frozen=True)
class JsonHttp:
    """`timeout` bounds each request (connect and each read); `retry` decides the retries."""

    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=4, max_elapsed=30.0))

    def call(
        self, method: str, url: str, *, what: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        return call_with_retries(lambda: self._once(method, url, what, body, headers), self.retry)

    def _once(self, method: str, url: str, what: str, body: Any, headers: Mapping[str, str] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise _from_status(error, what) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise TemporaryError(f"{what}: {reason}") from error
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise PermanentError(f"{what}: the answer is not JSON: {raw[:200]!r}") from error


def _from_status(error: urllib.error.HTTPError, what: str) -> AdapterError:
    text = error.read().decode(errors="replace").strip()
    message = f"{what}: HTTP {error.code}: {text[:500] or error.reason}"
    if error.code == 429 or error.code >= 500 or error.code == 408:
        after = error.headers.get("Retry-After") if error.headers else None
        retry_after = float(after) if after and after.isdigit() else None
        return TemporaryError(message, status=error.code, reason=str(error.reason), retry_after=retry_after)
    return _BY_STATUS.get(error.code, PermanentError)(message, status=error.code, reason=str(error.reason))
