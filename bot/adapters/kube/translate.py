"""kubernetes-client and urllib3 exceptions → bot.adapters.errors, from the apiserver's Status body."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import orjson
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from bot.adapters.errors import (
    AdapterError,
    Conflict,
    EvictionBlocked,
    Forbidden,
    Invalid,
    NotFound,
    PermanentError,
    TemporaryError,
    Unauthorized,
)

# The apiserver's fixed sentence for a pod under two PDBs (a 500 that no retry will change).
_MULTIPLE_PDBS = "more than one PodDisruptionBudget"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes | str) and body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return {"message": body.decode(errors="replace") if isinstance(body, bytes) else body}
        if isinstance(parsed, dict):
            return parsed
    return {}


def from_response(
    status: int, body: bytes | str | None, headers: Any, what: str, *, eviction: bool = False
) -> AdapterError:
    """The error for a non-2xx answer. `what` says which call it was ("evict pod shop/web-1")."""
    status_obj = _status_body(body)
    message = str(status_obj.get("message") or "").strip() or f"HTTP {status}"
    reason = str(status_obj.get("reason") or "")
    text = f"{what}: {message}"
    retry_after = retry_after_seconds(headers.get("Retry-After") if headers is not None else None)
    if status == 429:
        if eviction:
            causes = (status_obj.get("details") or {}).get("causes") or []
            budget = "; ".join(
                str(c.get("message", "")) for c in causes if c.get("reason") == "DisruptionBudget"
            )
            return EvictionBlocked(
                f"{text}" + (f" ({budget})" if budget else ""),
                budget_message=budget,
                reason=reason,
                retry_after=retry_after,
            )
        return TemporaryError(text, status=status, reason=reason, retry_after=retry_after)
    if status == 500 and _MULTIPLE_PDBS in message:
        return PermanentError(text, status=status, reason=reason)
    if status >= 500 or status in (408,):
        return TemporaryError(text, status=status, reason=reason, retry_after=retry_after)
    if status == 404:
        return NotFound(text, status=status, reason=reason)
    if status == 409:
        return Conflict(text, status=status, reason=reason)
    if status == 403:
        return Forbidden(text, status=status, reason=reason)
    if status == 401:
        return Unauthorized(text, status=status, reason=reason)
    if status in (400, 422):
        causes = (status_obj.get("details") or {}).get("causes") or []
        detail = "; ".join(str(c.get("message", "")) for c in causes if c.get("message"))
        if detail and detail not in message:
            text = f"{text} ({detail})"
        return Invalid(text, status=status, reason=reason)
    return PermanentError(text, status=status, reason=reason)


def from_exception(error: Exception, what: str, *, eviction: bool = False) -> AdapterError:
    """Translate whatever the client raised; the caller raises the result `from error`."""
    if isinstance(error, ApiException):
        if not error.status:
            # status 0: the client's own wrapping of an SSL error — a configuration problem.
            return PermanentError(f"{what}: {error.reason}")
        return from_response(int(error.status), error.body, error.headers, what, eviction=eviction)
    if isinstance(error, urllib3.exceptions.SSLError):
        return PermanentError(f"{what}: TLS failed: {error}")
    if isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return TemporaryError(f"{what}: {type(error).__name__}: {error}")
    return PermanentError(f"{what}: {type(error).__name__}: {error}")
