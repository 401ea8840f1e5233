"""Sandbox Kubernetes API fixtures: a server per test, the real kubectl, the official client."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_support import Kubectl
from kubernetes import client, config

from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import tiny_cluster


@pytest.fixture
def cluster() -> Iterator[SandboxServer]:
    with SandboxServer(objects=tiny_cluster()) as sb:
        yield sb


@pytest.fixture
def api_client(cluster: SandboxServer) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def kubectl(cluster: SandboxServer) -> Kubectl:
    """Run the real kubectl against the test's sandbox; fails (never skips) when kubectl is missing."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH: the sandbox's fidelity tests need the real kubectl (CI has it)")

    def run(
        *args: str, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, "--kubeconfig", str(kubeconfig or cluster.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            # No cache directory shared between parallel tests (discovery is cached per host:port).
            env={"HOME": str(cluster.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run
