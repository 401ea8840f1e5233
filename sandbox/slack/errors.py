"""The one way the emulated workspace refuses something: Slack's own error code, maybe with details."""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """A Web API refusal: `{"ok": false, "error": code, **extra}` with HTTP `status`.

    Slack answers almost every refusal with HTTP 200 and `ok: false`; only rate limits (429) and
    server trouble (5xx) change the status, which is what slack_sdk's retry handlers look at.
    """

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


def invalid_blocks(errors: list[str]) -> SlackError:
    return SlackError(
        "invalid_blocks",
        errors=errors,
        response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
    )
