"""Prometheus's HTTP API: an instant query's value and the firing alerts, as the canary asks them."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from bot.adapters.errors import Invalid, PermanentError
from bot.adapters.http import JsonHttp


@dataclass(frozen=True)
class Prometheus:
    """`url` is the server's base (http://prometheus.monitoring:9090)."""

    url: str
    http: JsonHttp = field(default_factory=JsonHttp)

    def query_value(self, query: str) -> float | None:
        """The instant query's value: the first sample of a vector, or a scalar; None for no data."""
        data = self._get("/api/v1/query", {"query": query}, f"query Prometheus {query!r}")
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return float(result[1])
        if kind == "vector" and isinstance(result, list):
            return float(result[0]["value"][1]) if result else None
        raise Invalid(f"query Prometheus {query!r}: a {kind} result has no single value — aggregate it")

    def firing_alerts(self, matchers: str | None = None) -> list[str]:
        """Firing alerts (ALERTS{alertstate="firing", <matchers>}) as "Name{label=value,…}"."""
        selector = 'alertstate="firing"' + (f",{matchers}" if matchers else "")
        data = self._get("/api/v1/query", {"query": f"ALERTS{{{selector}}}"}, "read firing alerts")
        alerts = []
        result = data.get("result")
        for sample in result if isinstance(result, list) else ():
            labels = dict(sample.get("metric") or {})
            name = labels.pop("alertname", "?")
            labels.pop("__name__", None)
            labels.pop("alertstate", None)
            shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            alerts.append(f"{name}{{{shown}}}" if shown else name)
        return sorted(alerts)

    def _get(self, path: str, params: dict[str, str], what: str) -> dict[str, object]:
        answer = self.http.call("GET", f"{self.url.rstrip('/')}{path}?{urlencode(params)}", what=what)
        if not isinstance(answer, dict) or answer.get("status") != "success":
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise PermanentError(f"{what}: Prometheus answered {error!r}")
        data = answer.get("data")
        return data if isinstance(data, dict) else {}
