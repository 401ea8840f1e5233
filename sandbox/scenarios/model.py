"""A sandbox scenario as validated data: what the cluster, AWS, Slack and the faults start with.

Scenario files are YAML shipped beside this module (`demo.yaml`, `faults.yaml`, `scale.yaml`); the
models refuse unknown keys so a typo in a scenario is an error naming the field, not a silent default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterSpec(_Strict):
    name: str
    region: str = "us-west-2"
    kubernetes_version: str = "1.31"
    zones: tuple[str, ...] = ("us-west-2a", "us-west-2b")
    # The kubeconfig context the scenario's kubeconfig names (the plan's `kube_context`).
    kube_context: str = ""

    @property
    def context(self) -> str:
        return self.kube_context or self.name


class Taint(_Strict):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodeGroupSpec(_Strict):
    """An EKS managed node group (AL2 unless told otherwise)."""

    name: str
    instance_type: str = "m5.large"
    desired: int = Field(ge=0)
    ami_family: Literal["AL2", "BOTTLEROCKET"] = "AL2"
    imds_v1_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    ebs_encrypted: bool = True
    ssh_open: bool = False
    labels: dict[str, str] = {}
    taints: tuple[Taint, ...] = ()


class NodeClassSpec(_Strict):
    """A Karpenter EC2NodeClass."""

    name: str
    ami_alias: str = "al2@latest"
    role: str = ""


class NodePoolSpec(_Strict):
    """A Karpenter NodePool and the nodes it already runs when the scenario starts."""

    name: str
    nodeclass: str
    nodes: int = Field(default=0, ge=0)
    instance_type: str = "m5.large"
    imds_v1_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    ebs_encrypted: bool = True
    labels: dict[str, str] = {}
    budget_nodes: str = "10%"


class HostPathMount(_Strict):
    path: str
    mount_path: str
    read_only: bool = True


class PdbSpec(_Strict):
    max_unavailable: int | str | None = None
    min_available: int | str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PdbSpec:
        if (self.max_unavailable is None) == (self.min_available is None):
            raise ValueError("a PDB takes exactly one of max_unavailable and min_available")
        return self


class WorkloadSpec(_Strict):
    kind: Literal["Deployment", "StatefulSet", "DaemonSet", "Pod"]
    name: str
    replicas: int = Field(default=1, ge=0)
    image: str
    cpu: str = "100m"
    memory: str = "128Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = None
    port: int | None = None
    # "http" probes GET /healthz on `port`; "tcp" opens it; "none" has no probes.
    probe: Literal["http", "tcp", "none"] = "http"
    labels: dict[str, str] = {}
    pod_annotations: dict[str, str] = {}
    node_selector: dict[str, str] = {}
    tolerations: tuple[Taint, ...] = ()
    tolerate_everything: bool = False
    priority_class: str | None = None
    privileged: bool = False
    host_network: bool = False
    host_paths: tuple[HostPathMount, ...] = ()
    command: tuple[str, ...] = ()
    empty_dir: bool = False
    volume_claim_gi: int | None = None
    pdb: PdbSpec | None = None


class NamespaceSpec(_Strict):
    name: str
    labels: dict[str, str] = {}
    workloads: tuple[WorkloadSpec, ...] = ()


class GeneratedWorkloads(_Strict):
    """Workloads made up by rule instead of listed: `namespaces × deployments × replicas` pods."""

    namespaces: int = Field(ge=1)
    deployments_per_namespace: int = Field(ge=1)
    replicas: int = Field(ge=1)
    image: str = "public.ecr.aws/nginx/nginx:1.27"
    cpu: str = "50m"
    memory: str = "64Mi"


SlackRole = Literal["sre", "team_lead", "oncall"]


class SlackUserSpec(_Strict):
    id: str
    name: str
    real_name: str = ""
    email: str = ""
    roles: tuple[SlackRole, ...] = ()


class SlackUsergroupSpec(_Strict):
    id: str
    handle: str
    name: str = ""
    members: tuple[str, ...] = ()


class SlackChannelSpec(_Strict):
    id: str
    name: str
    # "everyone" or explicit ids; the bot is added when `bot_member` is true.
    members: tuple[str, ...] | Literal["everyone"] = "everyone"
    bot_member: bool = True
    purpose: str = ""


class SlackSpec(_Strict):
    team_id: str = "T0SANDBOX"
    team_name: str = "Sandbox"
    bot_user_id: str = "UBOT00001"
    bot_token: str = "xoxb-sandbox-bot-token"
    signing_secret: str = "sandbox-signing-secret"
    users: tuple[SlackUserSpec, ...] = ()
    usergroups: tuple[SlackUsergroupSpec, ...] = ()
    channels: tuple[SlackChannelSpec, ...] = ()
    # Purposes the bot reads: migration channel, alerts channel.
    migration_channel: str = ""
    alerts_channel: str = ""


class ApiFaultSpec(_Strict):
    """Faults in the Kubernetes API's request path (what the apiserver and its load balancer do)."""

    latency_seconds: float = Field(default=0.0, ge=0.0)
    # Share of requests (watches excluded) answered with one of `error_codes` instead.
    error_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    error_codes: tuple[Literal[429, 500, 503], ...] = (429, 500, 503)
    retry_after_seconds: int = Field(default=1, ge=0)
    # A watch stream is cut after this many real seconds (0: never); clients must re-watch.
    watch_disconnect_seconds: float = Field(default=0.0, ge=0.0)
    # Requests by this user agent prefix or user name are never faulted (e.g. the test harness).
    exempt_users: tuple[str, ...] = ()
    random_seed: int = 0


class FaultSpec(_Strict):
    api: ApiFaultSpec = ApiFaultSpec()
    # Names of node groups with one node that never becomes Ready (controllers' kubelet hook).
    never_ready_node_groups: tuple[str, ...] = ()
    # "namespace/workload": its pods crash on Bottlerocket (FailedMount "read-only file system").
    crash_on_bottlerocket: tuple[str, ...] = ()
    # "namespace/pdb": this PDB never allows a disruption.
    blocked_pdbs: tuple[str, ...] = ()


class Scenario(_Strict):
    name: str
    description: str = ""
    extends: str | None = None
    cluster: ClusterSpec
    node_groups: tuple[NodeGroupSpec, ...] = ()
    nodeclasses: tuple[NodeClassSpec, ...] = ()
    nodepools: tuple[NodePoolSpec, ...] = ()
    namespaces: tuple[NamespaceSpec, ...] = ()
    generated: GeneratedWorkloads | None = None
    # DaemonSets listed here run on every node (kube-system agents, log shippers).
    slack: SlackSpec = SlackSpec()
    faults: FaultSpec = FaultSpec()
    # AWS: managed policies on the node role beyond EKS's four; Inspector findings on or off.
    extra_node_role_policies: tuple[str, ...] = ()
    # … and inline policies on it (name → policy document; "{account}", "{region}" and "{cluster}" in
    # it are filled in when AWS is seeded).
    node_role_inline_policies: dict[str, dict[str, Any]] = {}
    inspector_findings: bool = True
    # Kubernetes groups (the ones the bot impersonates people into) and the ClusterRole each holds:
    # "operator" may cordon, drain, change NodePools and the EC2NodeClass and delete NodeClaims; "view"
    # may read; "cluster-admin" anything.
    rbac_groups: dict[str, Literal["cluster-admin", "operator", "view"]] = {}
    random_seed: int = 0
    # Run the emulated controllers (scheduler, kubelet, Karpenter…) behind the API; off leaves the
    # cluster in its loaded steady state (what `scale` does until the controllers scale to it).
    controllers: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems: list[str] = []
        classes = {c.name for c in self.nodeclasses}
        for pool in self.nodepools:
            if pool.nodeclass not in classes:
                problems.append(f"nodepool {pool.name}: nodeclass {pool.nodeclass} is not declared")
        groups = {g.name for g in self.node_groups}
        for g in self.faults.never_ready_node_groups:
            if g not in groups:
                problems.append(f"faults.never_ready_node_groups: no node group {g}")
        workloads = {f"{ns.name}/{w.name}" for ns in self.namespaces for w in ns.workloads}
        for ref in self.faults.crash_on_bottlerocket:
            if ref not in workloads:
                problems.append(f"faults.crash_on_bottlerocket: no workload {ref}")
        pdbs = {f"{ns.name}/{w.name}" for ns in self.namespaces for w in ns.workloads if w.pdb}
        for ref in self.faults.blocked_pdbs:
            if ref not in pdbs:
                problems.append(f"faults.blocked_pdbs: no PDB {ref}")
        users = {u.id for u in self.slack.users}
        for ug in self.slack.usergroups:
            problems += [f"usergroup {ug.handle}: unknown member {m}" for m in ug.members if m not in users]
        channels = {c.id for c in self.slack.channels}
        for purpose in (self.slack.migration_channel, self.slack.alerts_channel):
            if purpose and purpose not in channels:
                problems.append(f"slack: channel {purpose} is not declared")
        names = [ns.name for ns in self.namespaces]
        if len(names) != len(set(names)):
            problems.append(f"namespaces repeat: {sorted(names)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def node_count(self) -> int:
        return sum(g.desired for g in self.node_groups) + sum(p.nodes for p in self.nodepools)
