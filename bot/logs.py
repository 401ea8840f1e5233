"""Logs: one JSON object per line for `migratebot serve` (what log collectors index), plain lines for
the CLI. Every line logged while a Slack request is being handled — and by the work it spawned —
carries that request's id; no line carries a secret.

    configure_logging(settings.log_level, "json", secrets=secret_values(settings))
    with request_scope() as request_id:          # handlers/front_door.py, per Slack request
        ...

The request id lives in a ContextVar: asyncio copies the context into every task created while it
is set (Background.spawn) and asyncio.to_thread runs its function in a copy too, so spawned work and
its blocking calls log with the id of the request that started them. Threads started by hand and
ThreadPoolExecutor.submit do not copy it (the engine's drain threads serve no request).

Redaction masks the exact values of the configured secrets (the Slack tokens, the signing secret,
the database password …) and anything shaped like a secret (bot.domain.audit's patterns: Slack
and AWS keys, bearer tokens, URLs with a password) in the message, the traceback and extra fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, SecretStr

from bot.domain.audit import REDACTED, redact

LogFormat = Literal["json", "text"]
FORMATS: tuple[LogFormat, ...] = ("json", "text")

_REQUEST_ID: ContextVar[str | None] = ContextVar("migratebot_request_id", default=None)

# A LogRecord's own attributes; anything else on a record came from `extra=` (uvicorn's
# color_message repeats the message with terminal escapes: not worth a field).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
# Shorter values are too likely to occur in ordinary text to be masked wherever they appear.
_MIN_SECRET_LENGTH = 6


# ---- request ids -------------------------------------------------------------------------------


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


@contextlib.contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Log everything inside (and whatever it spawns) under `request_id` (a new one by default)."""
    rid = request_id or new_request_id()
    token = _REQUEST_ID.set(rid)
    try:
        yield rid
    finally:
        _REQUEST_ID.reset(token)


# ---- redaction ---------------------------------------------------------------------------------


class Redactor:
    """Masks the given secret values, then every secret-shaped string (bot.domain.audit.redact)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        cleaned = redact(value)
        assert isinstance(cleaned, str)
        return cleaned

    def value(self, value: Any) -> Any:
        """Extra fields: strings masked, secret-named keys replaced (as in audit payloads)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict | list | tuple):
            return redact(_mask_strings(value, self))
        return value


def _mask_strings(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {str(k): _mask_strings(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_strings(v, redactor) for v in value]
    return value


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret a Settings holds: SecretStr fields, and the password of any URL field."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            with contextlib.suppress(ValueError):
                password = urlsplit(value).password
                if password:
                    found.append(password)
    return [s for s in found if s]


# ---- formatters --------------------------------------------------------------------------------


def _timestamp(record: logging.LogRecord) -> str:
    at = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "message", "request_id"?, "exc_info"?, …extra fields}: one line."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        clean = self._redactor
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": clean.text(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc_info"] = clean.text(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc_info"] = clean.text(record.exc_text)
        if record.stack_info:
            line["stack_info"] = clean.text(self.formatStack(record.stack_info))
        for key, value in _extras(record).items():
            if key not in line:
                line[key] = clean.value(value)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`2026-11-25T08:05:00.123Z INFO handlers.front_door [req 3f2a…] message key=value`."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id()
        parts = [_timestamp(record), record.levelname, record.name]
        if request_id:
            parts.append(f"[req {request_id}]")
        parts.append(record.getMessage())
        extras = _extras(record)
        if extras:
            parts.append(" ".join(f"{k}={v}" for k, v in extras.items() if k != "request_id"))
        text = " ".join(p for p in parts if p)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return self._redactor.text(text)


class _MigratebotHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (and replaces when called again)."""


def log_handler(
    fmt: LogFormat | str = "json", *, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Handler:
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)} (MIGRATEBOT_LOG_FORMAT)")
    handler = _MigratebotHandler(stream if stream is not None else sys.stderr)
    redactor = Redactor(secrets)
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor))
    return handler


def configure_logging(
    level: str | int = "INFO",
    fmt: LogFormat | str = "json",
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's records (uvicorn's too, when it runs with log_config=None) through one
    handler on the root logger, formatted as `fmt`, secrets masked. Calling it again replaces that
    handler; other handlers on the root (pytest's) are left alone. Returns the handler."""
    handler = log_handler(fmt, secrets=secrets, stream=stream)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _MigratebotHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    return handler
