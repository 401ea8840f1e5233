"""The only modules that do I/O to the outside world: one adapter per system.

`bot.adapters.kube` owns every Kubernetes API call, `bot.adapters.aws` every AWS call. Both translate
their library's exceptions into `bot.adapters.errors` (temporary vs permanent), so nothing above this
package ever sees an `ApiException` or a `ClientError`.
"""

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

__all__ = [
    "AdapterError",
    "Conflict",
    "EvictionBlocked",
    "Forbidden",
    "Invalid",
    "NotFound",
    "PermanentError",
    "TemporaryError",
    "Unauthorized",
]
