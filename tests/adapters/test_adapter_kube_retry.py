"""Retries are decided once in the adapter: 429/5xx/connection drops retried with backoff, the
server's Retry-After honoured, bounded in attempts and time. The sandbox has no fault hook yet, so a
scripted HTTP server plays the apiserver here."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from kubernetes import client
from scripted_http import Reply, Script, scripted_server

from bot.adapters.errors import NotFound, TemporaryError
from bot.adapters.kube import KubeAdapter, Timeouts
from bot.adapters.retry import RetryPolicy

NODE_LIST = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [{"metadata": {"name": "n1"}}]}
THROTTLED = {"kind": "Status", "status": "Failure", "reason": "TooManyRequests", "code": 429,
             "message": "Too many requests, please try again later."}  # fmt: skip


def adapter(script: Script, sleeps: list[float], **policy: float) -> KubeAdapter:
    cfg = client.Configuration()
    cfg.host = script.url
    cfg.api_key = {"authorization": "t0ken"}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    retry = RetryPolicy(rng=random.Random(7), **policy)  # type: ignore[arg-type]
    return KubeAdapter(client.ApiClient(cfg), retry=retry, sleep=sleeps.append, timeouts=Timeouts(1, 2))


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def throttled_once() -> Iterator[Script]:
    with scripted_server([Reply(429, THROTTLED, {"Retry-After": "3"}), Reply(200, NODE_LIST)]) as s:
        yield s


def test_a_429_is_retried_after_the_servers_retry_after(throttled_once: Script, sleeps: list[float]) -> None:
    nodes = adapter(throttled_once, sleeps).list_nodes()
    assert [n["metadata"]["name"] for n in nodes] == ["n1"]
    assert sleeps == [3.0]  # Retry-After wins over a smaller jittered backoff
    assert len(throttled_once.seen) == 2
    assert throttled_once.seen[0][2]["authorization"] == "Bearer t0ken"


def test_5xx_is_retried_with_growing_jittered_backoff_then_given_up(sleeps: list[float]) -> None:
    unavailable = {"kind": "Status", "code": 503, "message": "etcdserver: leader changed"}
    with scripted_server([Reply(503, unavailable)]) as script:
        kube = adapter(script, sleeps, max_attempts=4, base_delay=0.5, max_delay=10)
        with pytest.raises(TemporaryError, match="etcdserver: leader changed") as info:
            kube.list_nodes()
    assert info.value.status == 503
    assert len(script.seen) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))


def test_a_retry_after_beyond_the_time_budget_ends_the_retries_at_once(sleeps: list[float]) -> None:
    with scripted_server([Reply(429, THROTTLED, {"Retry-After": "120"})]) as script:
        kube = adapter(script, sleeps, max_elapsed=60)
        with pytest.raises(TemporaryError) as info:
            kube.list_nodes()
    assert info.value.retry_after == 120
    assert sleeps == []
    assert len(script.seen) == 1


def test_a_dropped_connection_is_temporary_and_retried(sleeps: list[float]) -> None:
    with scripted_server([Reply(0, drop=True), Reply(200, NODE_LIST)]) as script:
        nodes = adapter(script, sleeps).list_nodes()
    assert len(nodes) == 1
    assert len(sleeps) == 1


def test_permanent_errors_are_not_retried(sleeps: list[float]) -> None:
    missing = {"kind": "Status", "code": 404, "reason": "NotFound", "message": 'nodes "n9" not found'}
    with (
        scripted_server([Reply(404, missing)]) as script,
        pytest.raises(NotFound, match='get node n9: nodes "n9" not found'),
    ):
        adapter(script, sleeps).get_node("n9")
    assert sleeps == []
    assert len(script.seen) == 1


def test_nothing_listening_is_a_temporary_error(sleeps: list[float]) -> None:
    with scripted_server([Reply(200, NODE_LIST)]) as script:
        url = script.url
    cfg = client.Configuration()
    cfg.host = url
    kube = KubeAdapter(client.ApiClient(cfg), retry=RetryPolicy(max_attempts=2), sleep=sleeps.append)
    with pytest.raises(TemporaryError, match="list nodes"):
        kube.list_nodes()
    assert len(sleeps) == 1
