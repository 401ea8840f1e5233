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
"""

from __future__ import annotations


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
