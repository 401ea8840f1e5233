"""A sandbox Kubernetes API per test and a KubeAdapter on its admin kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.adapters.kube import KubeAdapter
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import tiny_cluster


@pytest.fixture
def cluster() -> Iterator[SandboxServer]:
    with SandboxServer(objects=tiny_cluster()) as sb:
        yield sb


@pytest.fixture
def kube(cluster: SandboxServer) -> Iterator[KubeAdapter]:
    adapter = KubeAdapter.from_kubeconfig(str(cluster.kubeconfig), None)
    yield adapter
    adapter.close()
