"""migratebot's error tree for outside systems (kopf's shape).

    AdapterError
    ├── TemporaryError(retry_after)     429, 5xx, timeouts, connection resets: worth trying again
    │   └── EvictionBlocked             429 from pods/eviction: a PodDisruptionBudget says not now
    └── PermanentError                  trying again gives the same answer
        ├── NotFound                    404
        ├── Conflict                    409 (AlreadyExists, stale resourceVersion), AWS ResourceInUse
        ├── Forbidden                   403: the message names the identity, the verb and the resource
        ├── Unauthorized                401: the credentials themselves are refused
        └── Invalid                     422 / 400 / AWS validation: the server's own message

Adapters raise these `from` the library exception; whether to retry is decided by the class alone.
They also report each one to the error observers (`observe_errors`): /metrics counts them there,
without the adapters knowing who listens.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)


class AdapterError(Exception):
    """A call to an outside system failed. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class TemporaryError(AdapterError):
    """Worth retrying; `retry_after` (seconds) is the server's own hint when it gave one."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class EvictionBlocked(TemporaryError):
    """The eviction would violate a PodDisruptionBudget (429). `budget_message` is the PDB's cause,
    e.g. "The disruption budget web needs 2 healthy pods and has 2 currently"."""

    def __init__(
        self,
        message: str,
        *,
        budget_message: str = "",
        status: int | None = 429,
        reason: str = "TooManyRequests",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason, retry_after=retry_after)
        self.budget_message = budget_message


class PermanentError(AdapterError):
    """Retrying gives the same answer."""


class NotFound(PermanentError):
    pass


class Conflict(PermanentError):
    pass


class Forbidden(PermanentError):
    pass


class Unauthorized(PermanentError):
    pass


class Invalid(PermanentError):
    pass


E = TypeVar("E", bound=AdapterError)
ErrorObserver = Callable[[str, AdapterError], None]

_observers: list[Callable[[], ErrorObserver | None]] = []
_observers_lock = threading.Lock()


def observe_errors(observer: ErrorObserver) -> Callable[[], None]:
    """Call `observer(target, error)` for every error an adapter reports ("kube", "aws", "slack");
    returns the function that stops it. A bound method is held weakly: a bot that is gone (tests
    build many in one process) stops being told without anyone having to remember to unsubscribe."""
    ref: Callable[[], ErrorObserver | None]
    if hasattr(observer, "__self__") and hasattr(observer, "__func__"):
        ref = weakref.WeakMethod(observer)
    else:

        def ref() -> ErrorObserver:
            return observer

    with _observers_lock:
        _observers.append(ref)

    def stop() -> None:
        with _observers_lock:
            if ref in _observers:
                _observers.remove(ref)

    return stop


def report_error(target: str, error: E) -> E:
    """Tell the observers about `error` (from `target`'s adapter) and hand it back to be raised.
    Observers never break the call that failed."""
    with _observers_lock:
        refs = list(_observers)
    for ref in refs:
        observer = ref()
        if observer is None:
            with _observers_lock:
                if ref in _observers:
                    _observers.remove(ref)
            continue
        try:
            observer(target, error)
        except Exception:
            log.exception("error observer %r failed", observer)
    return error


def error_kind(error: AdapterError) -> str:
    """The error's class as a label: NotFound → not_found, TemporaryError → temporary."""
    name = type(error).__name__.removesuffix("Error") or "adapter"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
