"""Building the Web API client: base URL, timeouts and retry handlers in one place."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.errors import (
    AdapterError,
    Forbidden,
    Invalid,
    NotFound,
    PermanentError,
    TemporaryError,
    Unauthorized,
)

SLACK_API_URL = "https://slack.com/api/"
# Slack answers within a second or two; ten leaves room for a slow moment without hanging a worker.
DEFAULT_TIMEOUT = 10
# 429: wait Retry-After and try again (Slack's tiers allow a burst, then pace); 5xx and dropped
# connections: a couple of retries with slack_sdk's backoff.
RATE_LIMIT_RETRIES = 3
SERVER_ERROR_RETRIES = 2
CONNECTION_RETRIES = 2

_NOT_FOUND = {
    "channel_not_found",
    "message_not_found",
    "no_such_subteam",
    "user_not_found",
    "thread_not_found",
}
_FORBIDDEN = {
    "not_in_channel",
    "missing_scope",
    "cant_update_message",
    "restricted_action",
    "not_allowed_token_type",
}
_UNAUTHORIZED = {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
_TEMPORARY = {"ratelimited", "internal_error", "service_unavailable", "fatal_error", "request_timeout"}


def build_client(
    token: str, *, base_url: str | None = None, timeout: int = DEFAULT_TIMEOUT
) -> AsyncWebClient:
    """The bot's AsyncWebClient (Bolt's AsyncApp needs the async one). `base_url` is
    MIGRATEBOT_SLACK_API_URL — the sandbox's Slack — or slack.com when unset."""
    return AsyncWebClient(
        token=token,
        base_url=base_url or SLACK_API_URL,
        timeout=timeout,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
            AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        ],
    )


def translate(error: Exception, method: str) -> AdapterError:
    """slack_sdk's exception as migratebot's error tree (raise it `from error`)."""
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error", "")) if error.response is not None else ""
        status = error.response.status_code if error.response is not None else None
        message = f"Slack {method} failed: {code or status}"
        if code in _NOT_FOUND:
            return NotFound(message, status=status, reason=code)
        if code in _FORBIDDEN:
            return Forbidden(message, status=status, reason=code)
        if code in _UNAUTHORIZED:
            return Unauthorized(message, status=status, reason=code)
        if code in _TEMPORARY or (status is not None and (status == 429 or status >= 500)):
            retry_after = error.response.headers.get("retry-after") if error.response is not None else None
            return TemporaryError(
                message, status=status, reason=code, retry_after=float(retry_after) if retry_after else None
            )
        if code in {"invalid_blocks", "invalid_arguments", "msg_too_long", "invalid_thread_ts"}:
            return Invalid(message, status=status, reason=code)
        return PermanentError(message, status=status, reason=code)
    return TemporaryError(f"Slack {method} failed: {error}")
