"""PagerDuty Events API v2: trigger, acknowledge and resolve one incident per alert episode.

The routing key comes from MIGRATEBOT_PAGERDUTY_ROUTING_KEY; the URL is PagerDuty's unless
MIGRATEBOT_PAGERDUTY_URL points elsewhere (tests use a local receiver). One dedup key per episode:
PagerDuty folds every event with that key into one incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.http import JsonHttp

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True)
class PagerDuty:
    routing_key: str = field(repr=False)
    url: str = EVENTS_URL
    http: JsonHttp = field(default_factory=JsonHttp)

    def trigger(
        self, dedup_key: str, summary: str, *, source: str, severity: str = "critical",
        details: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        payload = {
            "summary": summary[:1024],
            "source": source,
            "severity": severity,
            "component": "migratebot",
            "custom_details": dict(details or {}),
        }
        self._send("trigger", dedup_key, payload)

    def acknowledge(self, dedup_key: str) -> None:
        self._send("acknowledge", dedup_key)

    def resolve(self, dedup_key: str) -> None:
        self._send("resolve", dedup_key)

    def _send(self, action: str, dedup_key: str, payload: Mapping[str, Any] | None = None) -> None:
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        }
        if payload is not None:
            body["payload"] = dict(payload)
        self.http.call("POST", self.url, body=body, what=f"{action} PagerDuty incident {dedup_key}")
