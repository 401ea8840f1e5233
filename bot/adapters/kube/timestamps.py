"""RFC 3339 timestamps as the apiserver writes them, without python-dateutil (orjson gives strings)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str | None) -> datetime | None:
    """`2026-11-25T03:04:05Z`, `…05.123456Z` (MicroTime) or with an offset → an aware datetime.

    None or "" → None. Anything else malformed raises ValueError naming the value.
    """
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
