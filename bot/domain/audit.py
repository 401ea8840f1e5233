"""The audit chain's rules: what an event's hash covers, and that secrets never reach a payload."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bot.domain.canonical import canonical_json, sha256_hex

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|api[_-]?key|signing|credential|cookie)", re.I
)
# Slack and AWS keys, bearer tokens, and any URL that carries a password (scheme://user:password@).
_SECRET_VALUE = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|AKIA[0-9A-Z]{16}|Bearer\s+\S+|"
    r"[a-z][a-z0-9+.-]*://[^:@/\s]+:[^@\s]+@)",
    re.I,
)


def redact(value: Any) -> Any:
    """A copy of `value` with secret-looking keys and values replaced: payloads are written forever."""
    if isinstance(value, dict):
        return {str(k): (REDACTED if _SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        return _SECRET_VALUE.sub(REDACTED, value)
    return value


def event_hash(
    *, prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, subject: str, payload: Any
) -> str:
    """sha256 over the previous hash and the event's canonical JSON: changing any field breaks the chain."""
    body = canonical_json(
        {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "payload": payload}
    )
    return sha256_hex(prev_hash + "\n" + body)
