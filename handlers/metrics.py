"""A few counters in Prometheus' text format (/metrics): enough to watch the Slack surface work."""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]

COUNTERS: dict[str, str] = {
    "migratebot_slack_requests_total": "Requests received on /slack/events, by HTTP status answered.",
    "migratebot_slack_acks_total": "Requests acknowledged (200) on /slack/events.",
    "migratebot_commands_total": "/migrate commands parsed, by verb.",
    "migratebot_refusals_total": "Asks refused, by reason (signature, usage, channel, role, stale, …).",
    "migratebot_redeliveries_dropped_total": "Slack redeliveries and replays acknowledged, not acted on.",
    "migratebot_requests_expired_total": "Wave requests expired by the sweep before anyone decided.",
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[Labels, int]] = defaultdict(lambda: defaultdict(int))

    def inc(self, name: str, **labels: str) -> None:
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name}: declare it in handlers/metrics.py COUNTERS")
        with self._lock:
            self._counts[name][tuple(sorted(labels.items()))] += 1

    def value(self, name: str, **labels: str) -> int:
        with self._lock:
            return self._counts[name].get(tuple(sorted(labels.items())), 0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, help_text in COUNTERS.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
                series = self._counts.get(name) or {(): 0}
                for labels, count in sorted(series.items()):
                    shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(f"{name}{{{shown}}} {count}" if shown else f"{name} {count}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
