"""Building the Web API client: base URL, timeouts and retry handlers in one place."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.errors import (
    AdapterError,
    Forbidden,
    Invalid,
    NotFound,
    PermanentError,
    TemporaryError,
    Unauthorized,
    report_error,
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
            # First, and never retrying: it sees every answer and every failure, retried or not.
            ReportErrors(),
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
        retry_after = error.response.headers.get("retry-after") if error.response is not None else None
        return classify(f"Slack {method} failed: {code or status}", code, status, retry_after)
    return TemporaryError(f"Slack {method} failed: {error}")


def classify(message: str, code: str, status: int | None, retry_after: str | None = None) -> AdapterError:
    """An answer's Slack error code (`"error"` of an ok: false body) and HTTP status as our error."""
    if code in _NOT_FOUND:
        return NotFound(message, status=status, reason=code)
    if code in _FORBIDDEN:
        return Forbidden(message, status=status, reason=code)
    if code in _UNAUTHORIZED:
        return Unauthorized(message, status=status, reason=code)
    if code in _TEMPORARY or (status is not None and (status == 429 or status >= 500)):
        return TemporaryError(
            message, status=status, reason=code, retry_after=float(retry_after) if retry_after else None
        )
    if code in {"invalid_blocks", "invalid_arguments", "msg_too_long", "invalid_thread_ts"}:
        return Invalid(message, status=status, reason=code)
    return PermanentError(message, status=status, reason=code)


class ReportErrors(AsyncRetryHandler):
    """Reports every failed Web API attempt to bot.adapters.errors' observers; retries nothing.

    Most Slack failures never pass through `translate` (handlers catch slack_sdk's errors where they
    answer people), so the client's own retry loop is the one place that sees them all."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=0)

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rsplit("/", 1)[-1]
        if error is not None:
            report_error("slack", translate(error, method))
        elif response is not None:
            body = response.body or {}
            if response.status_code >= 400 or body.get("ok") is False:
                code = str(body.get("error", ""))
                after = response.headers.get("retry-after") or response.headers.get("Retry-After")
                retry_after = after[0] if isinstance(after, list) else after
                message = f"Slack {method} failed: {code or response.status_code}"
                report_error("slack", classify(message, code, response.status_code, retry_after))
        return False
