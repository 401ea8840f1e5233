"""The sandbox Kubernetes API: a generic resource store served over HTTP to kubectl and client-go alike."""

from sandbox.kube.app import KubeApi
from sandbox.kube.server import SandboxServer, kubeconfig
from sandbox.kube.store import Event, Store

__all__ = ["Event", "KubeApi", "SandboxServer", "Store", "kubeconfig"]
