"""The Prometheus adapter over HTTP: an instant query's value, the firing alerts a filter selects, and
Prometheus's failures as migratebot's errors (retried when temporary)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.adapters.errors import Invalid, TemporaryError
from bot.adapters.http import JsonHttp
from bot.adapters.prometheus import Prometheus
from bot.adapters.retry import RetryPolicy
from sandbox.serving import serve_on_loopback

ALERTS = [
    {
        "metric": {
            "__name__": "ALERTS",
            "alertname": "HighErrorRate",
            "alertstate": "firing",
            "severity": "critical",
        }
    },
    {"metric": {"__name__": "ALERTS", "alertname": "Watchdog", "alertstate": "firing", "severity": "none"}},
]


class FakePrometheus:
    """Answers /api/v1/query like Prometheus; `failures` 503s come first."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.failures = 0

    async def query(self, request: Request) -> JSONResponse:
        query = request.query_params["query"]
        self.queries.append(query)
        if self.failures:
            self.failures -= 1
            return JSONResponse({"status": "error", "error": "overloaded"}, status_code=503)
        if query.startswith("ALERTS{"):
            wanted = [
                a
                for a in ALERTS
                if 'severity="critical"' not in query or a["metric"]["severity"] == "critical"
            ]
            return _vector(wanted)
        if query == "matrix_please":
            return JSONResponse({"status": "success", "data": {"resultType": "matrix", "result": []}})
        if query == "absent_metric":
            return _vector([])
        return _vector([{"metric": {}, "value": [1764000000.0, "0.25"]}])


def _vector(result: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture
def served() -> Iterator[tuple[FakePrometheus, str]]:
    fake = FakePrometheus()
    with serve_on_loopback(Starlette(routes=[Route("/api/v1/query", fake.query)]), name="prometheus") as url:
        yield fake, url


def test_an_instant_query_gives_its_value_and_no_data_gives_none(served: tuple[FakePrometheus, str]) -> None:
    _, url = served
    prometheus = Prometheus(url)
    assert prometheus.query_value("sum(rate(http_errors_total[5m]))") == 0.25
    assert prometheus.query_value("absent_metric") is None
    with pytest.raises(Invalid, match="aggregate it"):
        prometheus.query_value("matrix_please")


def test_firing_alerts_are_named_with_their_labels_and_filtered_by_the_plans_matchers(
    served: tuple[FakePrometheus, str],
) -> None:
    fake, url = served
    prometheus = Prometheus(url)
    assert prometheus.firing_alerts('severity="critical"') == ["HighErrorRate{severity=critical}"]
    assert fake.queries[-1] == 'ALERTS{alertstate="firing",severity="critical"}'
    assert len(prometheus.firing_alerts()) == 2


def test_a_503_is_retried_and_one_that_lasts_is_a_temporary_error_naming_the_query(
    served: tuple[FakePrometheus, str],
) -> None:
    fake, url = served
    http = JsonHttp(timeout=2, retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_elapsed=5))
    fake.failures = 2
    assert Prometheus(url, http).query_value("up") == 0.25
    fake.failures = 5
    with pytest.raises(TemporaryError, match=r"query Prometheus 'up': HTTP 503"):
        Prometheus(url, http).query_value("up")
