"""The facts every report reads, gathered once through the adapters into plain frozen records.

Gathering is the only I/O in bot/reports: one paginated list each of nodes, pods (all namespaces),
ReplicaSets, DaemonSets, Deployments, StatefulSets, PDBs, NodePools and EC2NodeClasses on the
Kubernetes side — never a call per node or pod —, and on the AWS side the calls that describe the
instances a report is about. Each pod is reduced at once to the engine's PodInfo (bot/engine/pods.py)
and, for the first pod of each workload only, to the PodSpecFacts the compatibility scan reads: at
100,000 pods the reports hold 100,000 small records plus one spec per workload — or, gathered for one
wave (`keep_pods`), the records of the wave's nodes' pods only.

An AWS read that fails is not a silent default: it lands in `AwsFacts.unknown` with the reason, and
the report says "unknown" and why.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.adapters.aws import AwsAdapter
from bot.adapters.errors import AdapterError, NotFound
from bot.adapters.kube import Expired, KubeAdapter, parse_time
from bot.domain.quantities import byte_count, cpu_millis
from bot.engine.inventory import Inventory, gc_paused, replicaset_owners
from bot.engine.pods import (
    JSON,
    NodeInfo,
    PodInfo,
    node_from_json,
    pdb_from_json,
    pod_from_json,
    pod_workload,
)

# ---- quantities -------------------------------------------------------------------------------

GIB = 2**30


# ---- what one pod's spec says ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostPath:
    path: str
    mount_path: str
    read_only: bool
    container: str


@dataclass(frozen=True, slots=True)
class NodeTerm:
    """One requirement of a required node affinity term (key, operator, values)."""

    key: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PodSpecFacts:
    """What the compatibility and upgrade-readiness checks read of a workload's pods."""

    host_paths: tuple[HostPath, ...] = ()
    privileged: tuple[str, ...] = ()  # container names
    commands: tuple[tuple[str, str], ...] = ()  # (container, command + args as one line)
    added_capabilities: tuple[str, ...] = ()
    host_pid: bool = False
    host_network: bool = False
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # Required node affinity: OR of terms, each an AND of requirements.
    node_affinity: tuple[tuple[NodeTerm, ...], ...] = ()
    without_readiness_probe: tuple[str, ...] = ()  # container names
    spread: bool = False  # topologySpreadConstraints or pod anti-affinity
    termination_grace_seconds: int | None = None
    cpu_millis: int = 0  # requests of one pod
    memory_bytes: int = 0
    ephemeral_bytes: int = 0  # ephemeral-storage requests plus emptyDir size limits
    persistent_volume_claims: bool = False
    tolerations: tuple[tuple[str, str, str, str], ...] = ()  # (key, operator, value, effect)

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        """Whether these tolerations let the pod onto a node with this taint (Kubernetes' rules)."""
        for t_key, operator, t_value, t_effect in self.tolerations:
            if t_effect and t_effect != effect:
                continue
            if operator == "Exists" and (not t_key or t_key == key):
                return True
            if t_key == key and t_value == value:
                return True
        return False


def _command_line(container: JSON) -> str:
    parts = [*(container.get("command") or ()), *(container.get("args") or ())]
    return " ".join(str(p) for p in parts)


def _requests(container: JSON, name: str) -> Any:
    resources = container.get("resources") or {}
    return (resources.get("requests") or {}).get(name) or (resources.get("limits") or {}).get(name)


def pod_spec_facts(pod: JSON) -> PodSpecFacts:
    spec = pod.get("spec") or {}
    volumes = {str(v.get("name", "")): v for v in spec.get("volumes") or ()}
    containers = list(spec.get("containers") or ())
    init_containers = list(spec.get("initContainers") or ())
    host_paths: list[HostPath] = []
    privileged: list[str] = []
    commands: list[tuple[str, str]] = []
    capabilities: set[str] = set()
    for c in [*init_containers, *containers]:
        name = str(c.get("name", ""))
        security = c.get("securityContext") or {}
        if security.get("privileged"):
            privileged.append(name)
        capabilities.update(str(x) for x in (security.get("capabilities") or {}).get("add") or ())
        line = _command_line(c)
        if line:
            commands.append((name, line))
        for mount in c.get("volumeMounts") or ():
            volume = volumes.get(str(mount.get("name", ""))) or {}
            host = volume.get("hostPath")
            if host is not None:
                host_paths.append(
                    HostPath(
                        path=str(host.get("path", "")),
                        mount_path=str(mount.get("mountPath", "")),
                        read_only=bool(mount.get("readOnly", False)),
                        container=name,
                    )
                )
    affinity = spec.get("affinity") or {}
    required = (
        (affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    ).get("nodeSelectorTerms") or ()
    terms = tuple(
        tuple(
            NodeTerm(
                str(e.get("key", "")),
                str(e.get("operator", "")),
                tuple(str(v) for v in e.get("values") or ()),
            )
            for e in term.get("matchExpressions") or ()
        )
        for term in required
    )
    anti = affinity.get("podAntiAffinity") or {}
    grace = spec.get("terminationGracePeriodSeconds")
    cpu = sum(cpu_millis(_requests(c, "cpu")) for c in containers)
    memory = sum(byte_count(_requests(c, "memory")) for c in containers)
    ephemeral = sum(byte_count(_requests(c, "ephemeral-storage")) for c in containers)
    ephemeral += sum(
        byte_count((v.get("emptyDir") or {}).get("sizeLimit")) for v in volumes.values() if "emptyDir" in v
    )
    return PodSpecFacts(
        host_paths=tuple(host_paths),
        privileged=tuple(privileged),
        commands=tuple(commands),
        added_capabilities=tuple(sorted(capabilities)),
        host_pid=bool(spec.get("hostPID", False)),
        host_network=bool(spec.get("hostNetwork", False)),
        node_selector={str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()},
        node_affinity=terms,
        without_readiness_probe=tuple(
            str(c.get("name", "")) for c in containers if not c.get("readinessProbe")
        ),
        spread=bool(spec.get("topologySpreadConstraints"))
        or bool(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))
        or bool(anti.get("preferredDuringSchedulingIgnoredDuringExecution")),
        termination_grace_seconds=int(grace) if isinstance(grace, int) else None,
        cpu_millis=cpu,
        memory_bytes=memory,
        ephemeral_bytes=ephemeral,
        persistent_volume_claims=any("persistentVolumeClaim" in v for v in volumes.values()),
        tolerations=tuple(
            (
                str(t.get("key") or ""),
                str(t.get("operator") or "Equal"),
                str(t.get("value") or ""),
                str(t.get("effect") or ""),
            )
            for t in spec.get("tolerations") or ()
        ),
    )


# ---- workloads ---------------------------------------------------------------------------------

WorkloadKey = tuple[str, str, str]  # (kind, namespace, name)


def workload_key(pod: PodInfo) -> WorkloadKey:
    """A pod's workload: its resolved controller, or the pod itself when it has none."""
    if pod.workload_kind:
        return (pod.workload_kind, pod.namespace, pod.workload_name)
    return ("Pod", pod.namespace, pod.name)


def workload_text(key: WorkloadKey) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}"


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    kind: str
    namespace: str
    name: str
    replicas: int | None  # desired (Deployment/StatefulSet/ReplicaSet); None when it has no count
    spec: PodSpecFacts

    @property
    def key(self) -> WorkloadKey:
        return (self.kind, self.namespace, self.name)

    @property
    def text(self) -> str:
        return workload_text(self.key)

    @property
    def stateful(self) -> bool:
        return self.kind == "StatefulSet" or self.spec.persistent_volume_claims


@dataclass(frozen=True, slots=True)
class NodeRuntime:
    """status.nodeInfo, for the security table's node row."""

    kernel: str
    os_image: str
    container_runtime: str
    kubelet: str


def node_runtime(obj: JSON) -> NodeRuntime:
    info = (obj.get("status") or {}).get("nodeInfo") or {}
    return NodeRuntime(
        kernel=str(info.get("kernelVersion", "")),
        os_image=str(info.get("osImage", "")),
        container_runtime=str(info.get("containerRuntimeVersion", "")),
        kubelet=str(info.get("kubeletVersion", "")),
    )


@dataclass(frozen=True, slots=True)
class NodePoolFacts:
    name: str
    nodeclass: str
    labels: Mapping[str, str]
    limits_cpu_millis: int | None
    limits_memory_bytes: int | None
    used_cpu_millis: int
    used_memory_bytes: int


def nodepool_facts(obj: JSON) -> NodePoolFacts:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    limits = spec.get("limits") or {}
    used = (obj.get("status") or {}).get("resources") or {}
    return NodePoolFacts(
        name=str((obj.get("metadata") or {}).get("name", "")),
        nodeclass=str(((template.get("spec") or {}).get("nodeClassRef") or {}).get("name", "")),
        labels={str(k): str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()},
        limits_cpu_millis=cpu_millis(limits["cpu"]) if "cpu" in limits else None,
        limits_memory_bytes=byte_count(limits["memory"]) if "memory" in limits else None,
        used_cpu_millis=cpu_millis(used.get("cpu")),
        used_memory_bytes=byte_count(used.get("memory")),
    )


@dataclass(frozen=True, slots=True)
class NodeClassFacts:
    name: str
    ami_family: str  # "bottlerocket", "al2", … from amiFamily or the amiSelectorTerms alias
    user_data: str
    role: str
    http_tokens: str  # metadataOptions.httpTokens ("" when unset: Karpenter's default, required)
    hop_limit: int | None


def nodeclass_facts(obj: JSON) -> NodeClassFacts:
    spec = obj.get("spec") or {}
    family = str(spec.get("amiFamily", "")).lower()
    if not family:
        for term in spec.get("amiSelectorTerms") or ():
            alias = str(term.get("alias", ""))
            if alias:
                family = alias.split("@", 1)[0].lower()
                break
    metadata = spec.get("metadataOptions") or {}
    hop = metadata.get("httpPutResponseHopLimit")
    return NodeClassFacts(
        name=str((obj.get("metadata") or {}).get("name", "")),
        ami_family=family,
        user_data=str(spec.get("userData") or ""),
        role=str(spec.get("role") or spec.get("instanceProfile") or ""),
        http_tokens=str(metadata.get("httpTokens", "")),
        hop_limit=int(hop) if isinstance(hop, int) else None,
    )


@dataclass(frozen=True)
class ClusterFacts:
    inventory: Inventory
    workloads: Mapping[WorkloadKey, WorkloadFacts]
    runtimes: Mapping[str, NodeRuntime]  # node name → nodeInfo
    nodepools: Mapping[str, NodePoolFacts]
    nodeclasses: Mapping[str, NodeClassFacts]
    daemonset_specs: Mapping[tuple[str, str], PodSpecFacts] = field(default_factory=dict)
    # Read at gathering; the age of a node is measured against this.
    observed_at: datetime | None = None

    def workload_of(self, pod: PodInfo) -> WorkloadFacts | None:
        return self.workloads.get(workload_key(pod))


def _replicas(objects: Iterable[JSON], kind: str) -> dict[WorkloadKey, int]:
    out: dict[WorkloadKey, int] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        out[(kind, str(meta.get("namespace", "")), str(meta.get("name", "")))] = int(replicas)
    return out


@dataclass(frozen=True)
class NodeFacts:
    """Nodes reduced as they were listed: the engine's records and each node's nodeInfo."""

    records: list[NodeInfo]
    runtimes: dict[str, NodeRuntime]


def reduce_nodes(objects: Iterable[JSON]) -> NodeFacts:
    records: list[NodeInfo] = []
    runtimes: dict[str, NodeRuntime] = {}
    for obj in objects:
        record = node_from_json(obj)
        records.append(record)
        runtimes[record.name] = node_runtime(obj)
    return NodeFacts(records, runtimes)


def cluster_facts_from_objects(
    *,
    nodes: Iterable[JSON] | NodeFacts,
    pods: Iterable[JSON],
    pdbs: Iterable[JSON] = (),
    replicasets: Iterable[JSON] = (),
    daemonsets: Iterable[JSON] = (),
    deployments: Iterable[JSON] = (),
    statefulsets: Iterable[JSON] = (),
    nodepools: Iterable[JSON] = (),
    nodeclasses: Iterable[JSON] = (),
    observed_at: datetime | None = None,
    pods_on: Collection[str] | None = None,
) -> ClusterFacts:
    """Reduce API objects to facts; `nodes` and `pods` may be generators over pages (each object is
    reduced and dropped). `pods_on` given, the inventory keeps only the pods on those nodes; every
    other pod still counts for its workload (whose spec is its first pod's, wherever that runs)."""
    rs_list = list(replicasets)
    rs_owners = replicaset_owners(rs_list)
    ds_list = list(daemonsets)
    counts = {**_replicas(deployments, "Deployment"), **_replicas(statefulsets, "StatefulSet")}
    for key, value in _replicas(rs_list, "ReplicaSet").items():
        counts.setdefault(key, value)
    reduced = nodes if isinstance(nodes, NodeFacts) else reduce_nodes(nodes)
    node_records, runtimes = reduced.records, reduced.runtimes
    specs: dict[WorkloadKey, PodSpecFacts] = {}

    def reduce(objs: Iterable[JSON]) -> Iterable[PodInfo]:
        for obj in objs:
            if pods_on is not None and ((obj.get("spec") or {}).get("nodeName") or "") not in pods_on:
                # Not a pod the report lists, but maybe its workload's first: that one's spec stands
                # for the workload's, as it would with every pod kept.
                other = pod_workload(obj, rs_owners)
                if other not in specs:
                    specs[other] = pod_spec_facts(obj)
                continue
            pod = pod_from_json(obj, rs_owners)
            key = workload_key(pod)
            if key not in specs:
                specs[key] = pod_spec_facts(obj)
            yield pod

    inventory = Inventory.from_records(
        node_records,
        reduce(pods),
        [pdb_from_json(p) for p in pdbs],
        frozenset(
            (
                str((o.get("metadata") or {}).get("namespace", "")),
                str((o.get("metadata") or {}).get("name", "")),
            )
            for o in ds_list
        ),
    )
    workloads = {
        key: WorkloadFacts(key[0], key[1], key[2], counts.get(key), spec) for key, spec in specs.items()
    }
    ds_specs = {
        (
            str((o.get("metadata") or {}).get("namespace", "")),
            str((o.get("metadata") or {}).get("name", "")),
        ): (pod_spec_facts((o.get("spec") or {}).get("template") or {}))
        for o in ds_list
    }
    pools = [nodepool_facts(p) for p in nodepools]
    classes = [nodeclass_facts(c) for c in nodeclasses]
    return ClusterFacts(
        inventory=inventory,
        workloads=workloads,
        runtimes=runtimes,
        nodepools={p.name: p for p in pools},
        nodeclasses={c.name: c for c in classes},
        daemonset_specs=ds_specs,
        observed_at=observed_at,
    )


def gather_cluster(
    kube: KubeAdapter,
    *,
    page_size: int | None = None,
    now: datetime | None = None,
    pods: bool = True,
    on_nodes: Callable[[list[NodeInfo]], None] | None = None,
    keep_pods: Callable[[list[NodeInfo]], Collection[str] | None] | None = None,
) -> ClusterFacts:
    """Everything the readiness and security reports read of one cluster, in one pass. Nodes are
    listed first and handed to `on_nodes`, so a caller can start the AWS reads for the wave's
    instances while the pods are still being listed. `pods=False` skips the pod list (the security
    table needs none). `keep_pods(nodes)` names the nodes whose pods the inventory keeps (None: all);
    the other pods are read only for their workloads.

    The lists other than the pods' run on threads beside it, and the pod list reads one page ahead
    on its own: the API server answers while this thread reduces the page before."""
    for attempt in range(3):
        try:
            with gc_paused(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="gather") as pool:
                try:
                    return _gather_cluster(kube, pool, page_size, now, pods, on_nodes, keep_pods)
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
        except Expired:
            # A continue token outlived its revision: start over, as kubectl's pager does.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _gather_cluster(
    kube: KubeAdapter,
    pool: ThreadPoolExecutor,
    page_size: int | None,
    now: datetime | None,
    pods: bool,
    on_nodes: Callable[[list[NodeInfo]], None] | None,
    keep_pods: Callable[[list[NodeInfo]], Collection[str] | None] | None,
) -> ClusterFacts:
    pod_pages = _read_ahead(kube.pod_pages(page_size=page_size), pool) if pods else iter(())
    lists = {
        "replicasets": pool.submit(kube.list_replicasets),
        "daemonsets": pool.submit(kube.list_daemonsets),
        "deployments": pool.submit(kube.list_deployments),
        "statefulsets": pool.submit(kube.list_statefulsets),
        "pdbs": pool.submit(kube.list_pdbs),
        "nodepools": pool.submit(_optional, kube.list_nodepools),
        "nodeclasses": pool.submit(_optional, kube.list_ec2nodeclasses),
    }
    nodes = reduce_nodes(n for page in kube.node_pages(page_size=page_size) for n in page)
    if on_nodes is not None:
        on_nodes(nodes.records)
    pods_on = keep_pods(nodes.records) if keep_pods is not None else None
    listed = {name: future.result() for name, future in lists.items()}
    return cluster_facts_from_objects(
        nodes=nodes,
        pods=(p for page in pod_pages for p in page),
        observed_at=now,
        pods_on=pods_on,
        **listed,
    )


def _read_ahead(pages: Iterator[list[JSON]], pool: ThreadPoolExecutor) -> Iterator[list[JSON]]:
    """The same pages, the next one fetched and parsed on `pool` while the caller reduces this one.
    The first is asked for at once, before the caller reads any."""
    ahead: Future[list[JSON] | None] = pool.submit(next, pages, None)

    def read() -> Iterator[list[JSON]]:
        nonlocal ahead
        while (page := ahead.result()) is not None:
            ahead = pool.submit(next, pages, None)
            yield page

    return read()


def _optional(read: Any) -> list[JSON]:
    """Karpenter's kinds: a cluster without Karpenter answers 404 for them, which means none."""
    try:
        result: list[JSON] = read()
    except NotFound:
        return []
    return result


# ---- AWS ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceFacts:
    instance_id: str
    image_id: str
    http_tokens: str  # "required" (IMDSv2 only) | "optional" (IMDSv1 answers too)
    hop_limit: int | None
    key_name: str | None
    instance_profile_arn: str | None
    security_groups: tuple[str, ...]
    volume_ids: tuple[str, ...]
    launched_at: datetime | None


def instance_facts(obj: JSON) -> InstanceFacts:
    metadata = obj.get("MetadataOptions") or {}
    hop = metadata.get("HttpPutResponseHopLimit")
    launched = obj.get("LaunchTime")
    return InstanceFacts(
        instance_id=str(obj.get("InstanceId", "")),
        image_id=str(obj.get("ImageId", "")),
        http_tokens=str(metadata.get("HttpTokens", "")),
        hop_limit=int(hop) if isinstance(hop, int) else None,
        key_name=str(obj["KeyName"]) if obj.get("KeyName") else None,
        instance_profile_arn=str((obj.get("IamInstanceProfile") or {}).get("Arn") or "") or None,
        security_groups=tuple(str(g.get("GroupId", "")) for g in obj.get("SecurityGroups") or ()),
        volume_ids=tuple(
            str((m.get("Ebs") or {}).get("VolumeId", ""))
            for m in obj.get("BlockDeviceMappings") or ()
            if (m.get("Ebs") or {}).get("VolumeId")
        ),
        launched_at=launched if isinstance(launched, datetime) else parse_time(launched),
    )


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    volume_id: str
    encrypted: bool
    size_gib: int


@dataclass(frozen=True, slots=True)
class GroupFacts:
    group_id: str
    name: str
    ssh_open_to: tuple[str, ...]  # world CIDRs (0.0.0.0/0, ::/0) that may reach port 22


WORLD = ("0.0.0.0/0", "::/0")


def group_facts(obj: JSON) -> GroupFacts:
    open_to: list[str] = []
    for rule in obj.get("IpPermissions") or ():
        protocol = str(rule.get("IpProtocol", ""))
        if protocol == "-1":
            covers_22 = True
        elif protocol in ("tcp", "6"):
            low, high = rule.get("FromPort"), rule.get("ToPort")
            covers_22 = isinstance(low, int) and isinstance(high, int) and low <= 22 <= high
        else:
            covers_22 = False
        if not covers_22:
            continue
        cidrs = [str(r.get("CidrIp", "")) for r in rule.get("IpRanges") or ()]
        cidrs += [str(r.get("CidrIpv6", "")) for r in rule.get("Ipv6Ranges") or ()]
        open_to.extend(c for c in cidrs if c in WORLD and c not in open_to)
    return GroupFacts(str(obj.get("GroupId", "")), str(obj.get("GroupName", "")), tuple(open_to))


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    name: str
    wildcard_actions: tuple[str, ...]  # Allow statements' actions containing "*"
    admin: bool  # Allow "*" on "*"


def policy_facts(name: str, document: Mapping[str, Any]) -> PolicyFacts:
    statements = document.get("Statement") or ()
    if isinstance(statements, dict):
        statements = [statements]
    wildcards: list[str] = []
    admin = False
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action") or ()
        actions = [actions] if isinstance(actions, str) else list(actions)
        resources = statement.get("Resource") or ()
        resources = [resources] if isinstance(resources, str) else list(resources)
        for action in actions:
            if "*" in str(action) and str(action) not in wildcards:
                wildcards.append(str(action))
            if action == "*" and "*" in resources:
                admin = True
    return PolicyFacts(name, tuple(wildcards), admin)


@dataclass(frozen=True)
class AwsFacts:
    instances: Mapping[str, InstanceFacts] = field(default_factory=dict)
    images: Mapping[str, str] = field(default_factory=dict)  # image id → name
    volumes: Mapping[str, VolumeFacts] = field(default_factory=dict)
    groups: Mapping[str, GroupFacts] = field(default_factory=dict)
    # instance id → severity → ACTIVE findings; None when Inspector2 could not be read.
    findings: Mapping[str, Mapping[str, int]] | None = None
    # role name → its policies; a role whose policies could not be read is absent (see unknown).
    roles: Mapping[str, tuple[PolicyFacts, ...]] = field(default_factory=dict)
    profile_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # managed node group → its launch template's user data
    launch_template_user_data: Mapping[str, str] = field(default_factory=dict)
    # what could not be read → why ("inspector2": "Forbidden: …")
    unknown: Mapping[str, str] = field(default_factory=dict)


def gather_aws(
    aws: AwsAdapter,
    instance_ids: Sequence[str],
    *,
    cluster: str = "",
    node_groups: Sequence[str] = (),
    findings: bool = True,
    iam: bool = True,
) -> AwsFacts:
    """Describe these instances and what hangs off them. Every step that fails is recorded in
    `unknown` with the adapter's message; the steps after it still run."""
    unknown: dict[str, str] = {}

    def attempt(what: str, read: Any, default: Any) -> Any:
        try:
            return read()
        except AdapterError as e:
            unknown[what] = e.message
            return default

    ids = sorted(set(i for i in instance_ids if i))
    instances = {
        i.instance_id: i
        for i in (instance_facts(o) for o in attempt("instances", lambda: aws.describe_instances(ids), []))
    }
    image_ids = sorted({i.image_id for i in instances.values() if i.image_id})
    images = {
        str(o.get("ImageId", "")): str(o.get("Name", ""))
        for o in attempt("images", lambda: aws.describe_images(image_ids), [])
    }
    volume_ids = sorted({v for i in instances.values() for v in i.volume_ids})
    volumes = {
        str(o.get("VolumeId", "")): VolumeFacts(
            str(o.get("VolumeId", "")), bool(o.get("Encrypted", False)), int(o.get("Size", 0))
        )
        for o in attempt("volumes", lambda: aws.describe_volumes(volume_ids), [])
    }
    group_ids = sorted({g for i in instances.values() for g in i.security_groups})
    groups = {
        g.group_id: g
        for g in (
            group_facts(o)
            for o in attempt("security groups", lambda: aws.describe_security_groups(group_ids), [])
        )
    }
    counts: dict[str, Mapping[str, int]] | None = None
    if findings:
        raw = attempt("inspector2", lambda: aws.active_findings(sorted(instances)), None)
        if raw is not None:
            per: dict[str, Counter[str]] = defaultdict(Counter)
            for finding in raw:
                for resource in finding.get("resources") or ():
                    per[str(resource.get("id", ""))][str(finding.get("severity", "UNTRIAGED"))] += 1
            counts = {i: dict(per.get(i, Counter())) for i in instances}
    profile_roles: dict[str, tuple[str, ...]] = {}
    roles: dict[str, tuple[PolicyFacts, ...]] = {}
    if iam:
        for arn in sorted({i.instance_profile_arn for i in instances.values() if i.instance_profile_arn}):
            names = attempt(f"instance profile {arn}", lambda a=arn: aws.instance_profile_roles(a), None)
            if names is None:
                continue
            profile_roles[arn] = tuple(names)
            for role in names:
                if role in roles:
                    continue
                documents = attempt(f"IAM role {role}", lambda r=role: aws.role_policy_documents(r), None)
                if documents is not None:
                    roles[role] = tuple(policy_facts(n, d) for n, d in documents)
    user_data: dict[str, str] = {}
    for group in node_groups:
        template = attempt(
            f"launch template of node group {group}",
            lambda g=group: aws.nodegroup_launch_template(cluster, g),
            None,
        )
        if template is not None:
            text = attempt(
                f"user data of node group {group}",
                lambda t=template: aws.launch_template_user_data(t[0], t[1]),
                None,
            )
            if text is not None:
                user_data[group] = text
    return AwsFacts(
        instances=instances,
        images=images,
        volumes=volumes,
        groups=groups,
        findings=counts,
        roles=roles,
        profile_roles=profile_roles,
        launch_template_user_data=user_data,
        unknown=unknown,
    )
