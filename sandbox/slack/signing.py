"""Slack's request signing (v0), written out so the sandbox does not trust the library it is testing.

Slack signs every request to an app: `X-Slack-Signature: v0=` + hex HMAC-SHA256 of
`v0:{X-Slack-Request-Timestamp}:{raw body}` keyed with the app's signing secret. The tests prove
this agrees with slack_sdk's SignatureVerifier, which Bolt uses to accept or refuse requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time

VERSION = "v0"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"


def signature(secret: str, timestamp: str | int, body: bytes | str) -> str:
    raw = body.encode() if isinstance(body, str) else body
    base = f"{VERSION}:{timestamp}:".encode() + raw
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes | str, *, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(secret, ts, body)}
