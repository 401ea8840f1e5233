"""Put the chart's RBAC into a sandbox in place of the sandbox's own grant to the bot.

`migratebot sandbox` (sandbox/main.py) gives the bot's service account, migratebot/migratebot,
cluster-admin through the ClusterRoleBinding "migratebot-sandbox". The chart's release "migratebot"
in namespace "migratebot" renders the same service account, so a run narrowed to the chart's RBAC is
the same bot with the chart's rights:

    manifests = install_chart_rbac(sandbox.kube)      # any SandboxServer
    ... run the demo with the bot's context ...
    coverage = rbac_coverage(sandbox.kube.api.log.since(0)[0], manifests, service_account=SERVICE_ACCOUNT)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chart_support import NAMESPACE, RELEASE, render

from bot.adapters.errors import NotFound
from bot.adapters.kube import KubeAdapter
from sandbox.kube import SandboxServer

JSON = dict[str, Any]

SERVICE_ACCOUNT = (NAMESPACE, RELEASE)
SANDBOX_GRANT = "migratebot-sandbox"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def rbac_objects(values: Mapping[str, Any] | None = None) -> list[JSON]:
    """The chart's ServiceAccount, roles and bindings as `helm template` renders them."""
    return [d for d in render(values) if d["kind"] in RBAC_KINDS]


def install_chart_rbac(sandbox: SandboxServer, values: Mapping[str, Any] | None = None) -> list[JSON]:
    """Load the release namespace and the chart's RBAC; remove the sandbox's cluster-admin grant to
    the bot if it has one. Returns the loaded manifests, for rbac_coverage."""
    manifests = rbac_objects(values)
    namespace: JSON = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    sandbox.api.load([namespace, *manifests])
    admin = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig))
    try:
        admin.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{SANDBOX_GRANT}")
    except NotFound:
        pass
    finally:
        admin.close()
    return manifests


def service_account_kubeconfig(sandbox: SandboxServer, path: Path) -> Path:
    """A kubeconfig authenticating as the chart's service account with a token of its own."""
    token = sandbox.token_for_service_account(*SERVICE_ACCOUNT)
    return sandbox.write_kubeconfig(path, token, user=RELEASE)
