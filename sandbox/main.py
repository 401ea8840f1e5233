"""The whole sandbox from one scenario: Kubernetes API, AWS (moto), Slack and the admin surface.

    with Sandbox("demo") as sb:            # a few seconds; every part on 127.0.0.1, ephemeral ports
        sb.kubeconfig                      # contexts <cluster> (admin) and <cluster>-bot (service account)
        sb.aws_endpoint, sb.slack_api_url, sb.admin_url, sb.admin_token
        sb.info()                          # what /scenario serves: node groups, nodepools, Slack ids…

`run_sandbox` is what `migratebot sandbox` runs: it prints the four endpoint lines and serves until
SIGINT/SIGTERM. The sandbox is the outside world: nothing here imports the bot.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml

from sandbox.admin import AdminServer
from sandbox.aws import ANY_CREDENTIALS_ACCOUNT_ID, AwsEmulator, SeedResult
from sandbox.clock import ScaledClock
from sandbox.controllers import Controllers
from sandbox.controllers.common import template_hash
from sandbox.controllers.karpenter import CLASS_HASH, POOL_HASH
from sandbox.kube import SandboxServer
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import deep_copy
from sandbox.scenarios import Scenario, load_scenario
from sandbox.scenarios.build import KubeObjects, aws_seed, kube_objects, slack_seed
from sandbox.scenarios.faults import ApiFaults
from sandbox.slack import SlackEmulator

logger = logging.getLogger(__name__)

NODEPOOL_LABEL = "karpenter.sh/nodepool"
BOT_NAMESPACE = "migratebot"
BOT_SERVICE_ACCOUNT = "migratebot"


class Sandbox:
    """One scenario's outside world, started and stopped as a unit.

    `aws_any_credentials=True` (the CLI) puts AWS in moto's default account so a bot started
    separately with any credentials sees the seeded cluster; tests keep the default (an account of
    the sandbox's own) so several sandboxes in one process never see each other's instances.
    """

    def __init__(
        self,
        scenario: str | Scenario = "demo",
        *,
        kubeconfig_out: Path | str | None = None,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        aws_any_credentials: bool = False,
        controllers: bool | None = None,
    ) -> None:
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.clock = ScaledClock(time_scale)
        self.host = host
        self._kubeconfig_out = Path(kubeconfig_out) if kubeconfig_out else None
        self._aws_any_credentials = aws_any_credentials
        # None: as the scenario says.
        self._want_controllers = self.scenario.controllers if controllers is None else controllers
        self.api_faults = ApiFaults(self.scenario.faults.api)
        self.aws: AwsEmulator | None = None
        self.kube: SandboxServer | None = None
        self.slack: SlackEmulator | None = None
        self.admin: AdminServer | None = None
        self.controllers: Controllers | None = None
        self.seeded: SeedResult | None = None
        self.objects = KubeObjects()
        self.kubeconfig = Path()
        self.info_file = Path()
        self.bot_kube_token = ""
        self.startup_seconds: dict[str, float] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        s = self.scenario
        t0 = time.monotonic()
        self.slack = SlackEmulator(slack_seed(s)).start()
        self.aws = AwsEmulator(
            s.cluster.region,
            account_id=ANY_CREDENTIALS_ACCOUNT_ID if self._aws_any_credentials else None,
            host=self.host,
            clock=self.clock.now_datetime,
        )
        self.seeded = self.aws.seed(aws_seed(s))
        t1 = time.monotonic()
        self.objects = kube_objects(s, self.seeded.nodes, self.clock.now())
        t2 = time.monotonic()
        self.kube = SandboxServer(clock=self.clock)
        self._load_in_chunks(self.objects.objects)
        self.objects.release()
        self.kube.api.load(_bot_identity())
        self.kube.api.request_hook = self.api_faults.hook
        self.kube.start()
        t3 = time.monotonic()
        self.bot_kube_token = self.kube.token_for_service_account(BOT_NAMESPACE, BOT_SERVICE_ACCOUNT)
        self._settle_karpenter_hashes()
        self.controllers = self._start_controllers() if self._want_controllers else None
        self.admin = AdminServer(self, host=self.host).start()
        if self._kubeconfig_out is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"sandbox-{s.name}-")
            self._kubeconfig_out = Path(self._tmp.name) / "kubeconfig"
        self.kubeconfig = self._write_kubeconfig(self._kubeconfig_out)
        self.info_file = self._write_info(self.kubeconfig.with_name(self.kubeconfig.name + ".sandbox.json"))
        self.startup_seconds = {
            "aws": round(t1 - t0, 3),
            "build": round(t2 - t1, 3),
            "kube": round(t3 - t2, 3),
            "total": round(time.monotonic() - t0, 3),
        }

    def _load_in_chunks(self, objects: list[JSON], chunk: int = 10_000) -> None:
        """Load and let go chunk by chunk: the store deep-copies what it loads, so holding the whole
        built list until the end would double the peak (100,000 pods: ~1 GB each way)."""
        api = self.kube_server.api
        for start in range(0, len(objects), chunk):
            api.load(objects[start : start + chunk])
            objects[start : start + chunk] = [{}] * min(chunk, len(objects) - start)

    def stop(self) -> None:
        # Front to back: nothing new arrives while the parts behind are stopping.
        parts: list[tuple[str, Callable[[], None] | None]] = [
            ("admin", self.admin.stop if self.admin else None),
            ("controllers", self.controllers.stop if self.controllers else None),
            ("kube", self.kube.stop if self.kube else None),
            ("slack", self.slack.stop if self.slack else None),
            ("aws", self.aws.stop if self.aws else None),
        ]
        for part, stop in parts:
            if stop is None:
                continue
            try:
                stop()
            except Exception:
                logger.exception("sandbox: stopping %s failed", part)
        self.admin = None
        self.controllers = None
        self.kube = self.slack = self.aws = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_controllers(self) -> Controllers:
        controllers = Controllers(self.kube_server.api, self.clock, aws=self.aws).start()
        never_ready = set(self.objects.never_ready_nodes)
        for name, provider_id, created in self.objects.nodes:
            # Seeded nodes were there before the sandbox: ground truth starts them as they are.
            born = _epoch(created)
            controllers.truth.node(
                name,
                providerID=provider_id,
                seeded=True,
                launched=born,
                registered=born,
                **({} if name in never_ready else {"ready": born}),
            )
        spec = self.scenario.faults
        for node in self.objects.never_ready_nodes:
            controllers.fault_node_never_ready(node=node)
        workloads = {f"{ns.name}/{w.name}": w for ns in self.scenario.namespaces for w in ns.workloads}
        for ref in spec.crash_on_bottlerocket:
            namespace, name = ref.split("/", 1)
            writable = [
                m.path for m in workloads[ref].host_paths if not m.read_only and m.path.startswith("/usr")
            ]
            controllers.fault_crash_on_bottlerocket(
                namespace=namespace, selector=f"app.kubernetes.io/name={name}", path=(writable or ["/usr"])[0]
            )
        return controllers

    def _settle_karpenter_hashes(self) -> None:
        """Stamp the seeded NodeClaims and Nodes with the hashes Karpenter computes from the stored
        NodePool and EC2NodeClass (after the CRDs' defaults), so nothing starts out drifted."""
        api = self.kube_server.api
        pools_rt = api.rt("karpenter.sh", "v1", "nodepools")
        classes_rt = api.rt("karpenter.k8s.aws", "v1", "ec2nodeclasses")
        claims_rt = api.rt("karpenter.sh", "v1", "nodeclaims")
        nodes_rt = api.rt("", "v1", "nodes")
        store = api.store
        updates: list[JSON] = []
        with store.lock:
            claims, _, _ = store.list_objects(claims_rt, None)
            for claim in claims:
                pool = store.get(
                    pools_rt, "", (claim["metadata"].get("labels") or {}).get(NODEPOOL_LABEL, "")
                )
                if pool is None:
                    continue
                ref = pool["spec"]["template"]["spec"]["nodeClassRef"]["name"]
                nodeclass = store.get(classes_rt, "", ref) or {}
                hashes = {
                    POOL_HASH: template_hash(pool["spec"].get("template") or {}),
                    "karpenter.sh/nodepool-hash-version": "v3",
                    CLASS_HASH: template_hash(nodeclass.get("spec", {}).get("amiSelectorTerms") or []),
                    "karpenter.k8s.aws/ec2nodeclass-hash-version": "v4",
                }
                for obj in (claim, store.get(nodes_rt, "", (claim.get("status") or {}).get("nodeName", ""))):
                    if obj is not None:
                        updated = deep_copy(obj)
                        updated["metadata"]["annotations"] = {
                            **(obj["metadata"].get("annotations") or {}),
                            **hashes,
                        }
                        updated["apiVersion"] = "v1" if obj is not claim else "karpenter.sh/v1"
                        updated["kind"] = "Node" if obj is not claim else "NodeClaim"
                        updates.append(updated)
        api.load(updates)

    # ---- what the parts are, for callers --------------------------------------------------------

    @property
    def kube_server(self) -> SandboxServer:
        if self.kube is None:
            raise RuntimeError("the sandbox is not running")
        return self.kube

    @property
    def admin_token(self) -> str:
        return self.kube_server.admin_token

    @property
    def aws_endpoint(self) -> str:
        return self.aws.endpoint_url if self.aws else ""

    @property
    def slack_api_url(self) -> str:
        return self.slack.api_url if self.slack else ""

    @property
    def admin_url(self) -> str:
        return self.admin.url if self.admin else ""

    def admin_request(
        self, method: str, path: str, body: JSON | None = None, *, timeout: float = 30.0
    ) -> Any:
        """One call to the admin surface (faults, ground truth, …) with the admin token: what the
        demo's "platform team", the soak's chaos and the tests do by hand."""
        request = urllib.request.Request(
            f"{self.admin_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    @property
    def context(self) -> str:
        return self.scenario.cluster.context

    @property
    def bot_context(self) -> str:
        return f"{self.context}-bot"

    def endpoint_lines(self) -> list[str]:
        """What `migratebot sandbox` prints, in order."""
        return [
            f"kubeconfig: {self.kubeconfig}",
            f"aws endpoint: {self.aws_endpoint}",
            f"slack api: {self.slack_api_url}",
            f"admin: {self.admin_url}",
        ]

    def info(self) -> JSON:
        """The scenario as the bot's tests and the demo configure themselves from it (GET /scenario)."""
        s = self.scenario
        seeded = self.seeded
        slack = self.slack
        return {
            "scenario": s.name,
            "description": s.description,
            "cluster": {
                "name": s.cluster.name,
                "region": s.cluster.region,
                "kubernetesVersion": s.cluster.kubernetes_version,
                "zones": list(s.cluster.zones),
                "context": self.context,
                "botContext": self.bot_context,
            },
            "kube": {
                "url": self.kube_server.url,
                "kubeconfig": str(self.kubeconfig),
                "botServiceAccount": f"system:serviceaccount:{BOT_NAMESPACE}:{BOT_SERVICE_ACCOUNT}",
                "botPermissions": "cluster-admin (least privilege comes with the Helm chart's RBAC)",
            },
            "nodeGroups": [
                {
                    "name": g.name,
                    "instanceType": g.instance_type,
                    "desired": g.desired,
                    "amiFamily": g.ami_family,
                }
                for g in s.node_groups
            ],
            "nodePools": [{"name": p.name, "nodeClass": p.nodeclass, "nodes": p.nodes} for p in s.nodepools],
            "nodeClasses": [{"name": c.name, "amiAlias": c.ami_alias} for c in s.nodeclasses],
            "nodes": len(seeded.nodes) if seeded else 0,
            "pods": self.objects.pod_count,
            "aws": {
                "endpoint": self.aws_endpoint,
                "region": s.cluster.region,
                "accountId": self.aws.account_id if self.aws else "",
                "env": self.aws.client_env() if self.aws else {},
            },
            "slack": {
                "apiUrl": self.slack_api_url,
                "teamId": s.slack.team_id,
                "botUserId": s.slack.bot_user_id,
                "botToken": slack.bot_token if slack else "",
                "signingSecret": slack.signing_secret if slack else "",
                "channels": {
                    "migration": s.slack.migration_channel,
                    "alerts": s.slack.alerts_channel,
                    "all": {c.id: c.name for c in s.slack.channels},
                },
                "users": [{"id": u.id, "name": u.name, "roles": list(u.roles)} for u in s.slack.users],
                "usergroups": [
                    {"id": g.id, "handle": g.handle, "members": list(g.members)} for g in s.slack.usergroups
                ],
            },
            "faults": s.faults.model_dump(mode="json"),
            "controllers": self.controllers is not None,
            "timeScale": self.clock.time_scale,
            "startupSeconds": self.startup_seconds,
        }

    # ---- files ----------------------------------------------------------------------------------

    def _write_kubeconfig(self, path: Path) -> Path:
        kube = self.kube_server
        return self._kubeconfig_file(
            path,
            users={"sandbox-admin": kube.admin_token, "migratebot": self.bot_kube_token},
            contexts=[(self.context, "sandbox-admin", None), (self.bot_context, "migratebot", BOT_NAMESPACE)],
        )

    def write_bot_kubeconfig(self, path: Path, token: str, *, user: str = "migratebot") -> Path:
        """A kubeconfig as an operator's machine would give the bot: the plan's context (the cluster's
        context name) authenticating with a service account's `token`, in the bot's namespace."""
        return self._kubeconfig_file(
            path, users={user: token}, contexts=[(self.context, user, BOT_NAMESPACE)]
        )

    def _kubeconfig_file(
        self, path: Path, *, users: dict[str, str], contexts: list[tuple[str, str, str | None]]
    ) -> Path:
        """Contexts (name, user, namespace) on this cluster; the first is the current one. Owner-only."""
        import base64

        kube = self.kube_server
        cluster = self.scenario.cluster.name
        config: JSON = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "server": kube.url,
                        "certificate-authority-data": base64.b64encode(kube.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
            "contexts": [
                {
                    "name": name,
                    "context": {"cluster": cluster, "user": user, **({"namespace": ns} if ns else {})},
                }
                for name, user, ns in contexts
            ],
            "current-context": contexts[0][0],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, yaml.safe_dump(config, sort_keys=False))
        return path

    def _write_info(self, path: Path) -> Path:
        """Everything a local bot or demo needs, secrets included, readable by the owner only."""
        info = self.info()
        info["admin"] = {"url": self.admin_url, "token": self.admin_token}
        _write_private(path, json.dumps(info, indent=2))
        return path


def _epoch(rfc3339: str) -> float:
    return datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _bot_identity() -> list[JSON]:
    """The bot's service account, bound to cluster-admin for now (the Helm chart narrows it)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": BOT_SERVICE_ACCOUNT, "namespace": BOT_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "migratebot-sandbox"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": BOT_SERVICE_ACCOUNT, "namespace": BOT_NAMESPACE}],
        },
    ]


def run_sandbox(
    scenario: str,
    kubeconfig_out: Path | None = None,
    time_scale: float = 1.0,
    *,
    host: str = "127.0.0.1",
    emit: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Start the scenario, print the four endpoint lines, serve until SIGINT/SIGTERM (or `stop`)."""
    loaded = load_scenario(scenario)  # ScenarioNotFound before anything starts
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        with Sandbox(
            loaded, kubeconfig_out=kubeconfig_out, time_scale=time_scale, host=host, aws_any_credentials=True
        ) as sb:
            for line in sb.endpoint_lines():
                emit(line)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
