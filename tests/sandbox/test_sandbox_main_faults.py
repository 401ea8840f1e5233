"""The `faults` scenario: the official client meets throttling and server errors with Retry-After,
a node that never becomes Ready, and a PDB that never allows an eviction."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.main import Sandbox


@pytest.fixture(scope="module")
def faults() -> Iterator[Sandbox]:
    with Sandbox("faults", time_scale=10) as sb:
        yield sb


def no_retry_client(sb: Sandbox, context: str | None = None) -> client.CoreV1Api:
    """The official client with urllib3's own retries off, so every faulted answer reaches the caller."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(sb.kubeconfig), context=context, client_configuration=cfg)
    cfg.retries = urllib3.Retry(
        total=0, redirect=0, status=0, respect_retry_after_header=False, raise_on_status=False
    )
    return client.CoreV1Api(client.ApiClient(cfg))


def test_some_requests_are_answered_429_or_5xx_with_retry_after(faults: Sandbox) -> None:
    core = no_retry_client(faults)

    def one(_: int) -> tuple[int, str]:
        try:
            core.list_namespace(limit=1)
        except ApiException as e:
            return e.status, e.headers.get("Retry-After", "")
        return 200, ""

    # Each request waits the scenario's 150 ms of latency: ask in parallel.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(120)))
    failed = [(code, retry) for code, retry in answers if code != 200]
    assert failed, "5% of 120 requests should have failed"
    assert {code for code, _ in failed} <= {429, 500, 503}
    assert all(retry == "1" for _, retry in failed), failed
    assert len(failed) < 20


def test_one_node_group_node_never_becomes_ready(faults: Sandbox) -> None:
    [name] = faults.objects.never_ready_nodes
    core = no_retry_client(faults)
    for _ in range(10):
        try:
            node = core.read_node(name)
            break
        except ApiException:
            continue
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "False" and ready.reason == "KubeletNotReady"
    assert node.metadata.labels["eks.amazonaws.com/nodegroup"] == "ng-batch"


def test_the_orders_db_pdb_never_allows_an_eviction(faults: Sandbox) -> None:
    core = no_retry_client(faults)
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name="orders-db-0", namespace="payments"))
    statuses: list[int] = []
    refusal = ""
    for _ in range(10):
        try:
            core.create_namespaced_pod_eviction("orders-db-0", "payments", body)
            statuses.append(201)
        except ApiException as e:
            statuses.append(e.status)
            if e.status == 429 and "disruption budget" in (e.body or ""):
                refusal = e.body
                break
    assert "Cannot evict pod as it would violate the pod's disruption budget" in refusal, statuses
    assert 201 not in statuses
