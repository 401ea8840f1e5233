"""What an audit event's hash covers, and what a payload may never hold."""

from __future__ import annotations

import datetime as dt

from bot.domain.audit import GENESIS_HASH, REDACTED, event_hash, redact
from bot.domain.canonical import canonical_hash, canonical_json

AT = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _hash(**changes: object) -> str:
    fields: dict[str, object] = {
        "prev_hash": GENESIS_HASH,
        "seq": 1,
        "at": AT,
        "actor": "U1",
        "action": "wave.request",
        "subject": "wave:demo/web",
        "payload": {"from": "planned"},
    }
    fields.update(changes)
    return event_hash(**fields)  # type: ignore[arg-type]


def test_changing_any_field_of_an_event_changes_its_hash() -> None:
    base = _hash()
    for change in [
        {"prev_hash": "1" * 64},
        {"seq": 2},
        {"at": AT + dt.timedelta(seconds=1)},
        {"actor": "U2"},
        {"action": "wave.approve"},
        {"subject": "wave:demo/db"},
        {"payload": {"from": "requested"}},
    ]:
        assert _hash(**change) != base, change


def test_canonical_json_ignores_key_order_and_normalises_time_zones() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert canonical_json({"b": 1, "a": AT}) == canonical_json({"a": AT.astimezone(paris), "b": 1})
    assert canonical_hash({"x": [1, 2]}) != canonical_hash({"x": [2, 1]})


def test_secrets_are_redacted_by_key_and_by_shape() -> None:
    payload = {
        "slack_bot_token": "xoxb-123-456",
        "nested": [{"Authorization": "Bearer abc"}, "token xoxp-9-9-9 leaked in text"],
        "url": "postgresql+psycopg://bot:hunter2@db:5432/mb",
        "node": "ip-10-0-1-23.us-west-2.compute.internal",
    }
    clean = redact(payload)
    assert clean["slack_bot_token"] == REDACTED
    assert clean["nested"][0]["Authorization"] == REDACTED
    assert "xoxp" not in clean["nested"][1]
    assert "hunter2" not in clean["url"]
    assert clean["node"] == payload["node"]
