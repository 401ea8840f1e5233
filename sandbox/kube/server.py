"""Run the Kubernetes API in-process: uvicorn on 127.0.0.1, an ephemeral port, a background thread."""

from __future__ import annotations

import base64
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import yaml

from sandbox.kube.app import KubeApi
from sandbox.kube.auth import User, service_account_user
from sandbox.kube.jsontypes import JSON
from sandbox.kube.tls import certificates
from sandbox.serving import ThreadedUvicorn


def kubeconfig(
    server: str,
    token: str,
    *,
    ca_pem: bytes | None = None,
    user: str = "sandbox-admin",
    context: str = "sandbox",
) -> JSON:
    cluster: JSON = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "sandbox", "user": user}}],
        "current-context": context,
    }


class SandboxServer:
    """The sandbox Kubernetes API as a context manager.

        with SandboxServer(objects=tiny_cluster()) as sb:
            subprocess.run(["kubectl", "--kubeconfig", sb.kubeconfig, "get", "nodes"])

    `url` is the base URL (HTTPS; `ca_file`/`ca_pem` hold the CA), `kubeconfig` a file
    authenticating as the admin (system:masters),
    `api` the in-process `KubeApi` (store, tokens, request log) for controllers and assertions.
    """

    def __init__(
        self,
        objects: list[JSON] | None = None,
        *,
        kubeconfig_path: Path | str | None = None,
        bookmark_interval: float = 60.0,
        admin_token: str | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        # `clock` stamps every timestamp the API writes (the scaled emulated clock of later slices).
        self.api = KubeApi(admin_token=self.admin_token, bookmark_interval=bookmark_interval, clock=clock)
        if objects:
            self.api.load(objects)
        self._port = port
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._runner: ThreadedUvicorn | None = None
        self.url = ""
        self.ca_pem = b""
        self.ca_file = Path()
        self.kubeconfig = Path()

    def start(self) -> SandboxServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-kube-")
        tmp = Path(self._tmp.name)
        certs = certificates()
        (tmp / "tls.crt").write_bytes(certs.cert_pem)
        (tmp / "tls.key").write_bytes(certs.key_pem)
        self.ca_pem = certs.ca_pem
        (tmp / "ca.crt").write_bytes(certs.ca_pem)
        self.ca_file = tmp / "ca.crt"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        port = sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        self._runner = ThreadedUvicorn(
            self.api.app,
            sock,
            name=f"sandbox-kube-{port}",
            ssl_certfile=str(tmp / "tls.crt"),
            ssl_keyfile=str(tmp / "tls.key"),
            # One process serves the API with many concurrent watches open: keep connections alive
            # as the apiserver does (kubectl and client-go reuse them).
            timeout_keep_alive=30,
        )
        self._runner.start()
        self.api.start()
        if self._kubeconfig_path is None:
            self._kubeconfig_path = tmp / "kubeconfig"
        self.kubeconfig = self.write_kubeconfig(self._kubeconfig_path, self.admin_token)
        return self

    def write_kubeconfig(self, path: Path | str, token: str, *, user: str = "sandbox-admin") -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(kubeconfig(self.url, token, ca_pem=self.ca_pem, user=user)))
        return path

    def token_for(self, user: str, groups: tuple[str, ...] = ()) -> str:
        return self.api.tokens.add(User(user, groups))

    def token_for_service_account(self, namespace: str, name: str) -> str:
        return self.api.tokens.add(service_account_user(namespace, name))

    def stop(self) -> None:
        self.api.close()
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
