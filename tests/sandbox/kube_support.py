"""Helpers shared by the sandbox Kubernetes API tests (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from kubernetes import client

from sandbox.kube import SandboxServer

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def client_for(cluster: SandboxServer, token: str) -> client.ApiClient:
    """An official client authenticating with `token` (a user or service account of the sandbox)."""
    cfg = client.Configuration()
    cfg.host = cluster.url
    cfg.ssl_ca_cert = str(cluster.ca_file)
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)
