"""Karpenter (v1) as the cluster sees it: provisioning, NodeClaim lifecycle, drift and emptiness.

- Provisioning: pods the scheduler marked Unschedulable are batched (`Timing.karpenter_batch`),
  matched against NodePools by weight (template requirements and labels, taints, the pods' node
  selectors and required affinity), packed onto NodeClaims within the pool's `limits`, and each
  NodeClaim launched as an EC2 instance in the AWS emulator with the AMI its EC2NodeClass's
  amiSelectorTerms name. Its Node registers tainted `karpenter.sh/unregistered` and is Ready after
  `Timing.karpenter_registered` / `karpenter_node_ready(os)`.
- Drift: a NodeClaim whose NodePool template (nodeClassRef included) or EC2NodeClass
  amiSelectorTerms hash no longer matches gets Drifted=True.
- Disruption: ONE command at a time, like Karpenter's disruption controller: a drifted node within
  its NodePool's budget (reason Drifted) is tainted `karpenter.sh/disrupted:NoSchedule`, a
  replacement launched and waited for, then its pods evicted through the eviction API (PDBs honoured,
  429s retried; non-critical pods before system-*-critical ones), then the instance terminated and
  the Node and NodeClaim deleted. Empty nodes go without a replacement (drifted, or consolidated
  after `consolidateAfter` under WhenEmpty/WhenEmptyOrUnderutilized). A node, or a node running a
  pod, annotated `karpenter.sh/do-not-disrupt: "true"` is never disrupted.
- Termination: NodeClaims carry the `karpenter.sh/termination` finalizer; one deleted through the
  API is drained (PDBs honoured), its instance terminated and its Node deleted before it goes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import product

from sandbox.aws.emulator import AwsEmulator
from sandbox.aws.records import NodeInstance
from sandbox.aws.seed import AmiFamily
from sandbox.controllers.common import (
    DO_NOT_DISRUPT,
    condition,
    condition_true,
    critical,
    duration_seconds,
    is_daemonset_pod,
    node_ready,
    pod_fits_labels,
    pod_requests,
    quantity,
    random_suffix,
    set_condition,
    template_hash,
    terminal,
    untolerated_taint,
)
from sandbox.controllers.common import _expression_matches as expression_matches
from sandbox.controllers.groundtruth import GroundTruth
from sandbox.controllers.kube import Kube
from sandbox.controllers.kubelet import Kubelet
from sandbox.controllers.nodes import INSTANCE_TYPES, allocatable, capacity, instance_id_of, node_for
from sandbox.controllers.timing import Timing
from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import Event

log = logging.getLogger("sandbox.controllers.karpenter")

NODEPOOL = "karpenter.sh/nodepool"
NODECLASS = "karpenter.k8s.aws/ec2nodeclass"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
ZONE = "topology.kubernetes.io/zone"
REGISTERED = "karpenter.sh/registered"
INITIALIZED = "karpenter.sh/initialized"
UNREGISTERED_TAINT = {"key": "karpenter.sh/unregistered", "effect": "NoExecute"}
DISRUPTED_TAINT = {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}
POOL_HASH = "karpenter.sh/nodepool-hash"
CLASS_HASH = "karpenter.k8s.aws/ec2nodeclass-hash"
# Karpenter's termination finalizer: deleting a NodeClaim (kubectl delete nodeclaim, or Karpenter's
# own disruption) drains its node, terminates the instance and deletes the Node before the claim goes.
TERMINATION_FINALIZER = "karpenter.sh/termination"
DEFAULT_TYPES = ("m5.large", "m5.xlarge", "m5.2xlarge")


@dataclass
class ClaimTimers:
    registered_at: float
    instance: NodeInstance
    bottlerocket: bool


@dataclass
class Command:
    """One disruption in flight (Karpenter's orchestration queue holds one at a time)."""

    claim: str
    node: str
    pool: str
    reason: str
    replacement: str | None
    started: float
    retry: dict[str, float] = field(default_factory=dict)


class Karpenter:
    def __init__(
        self, kube: Kube, aws: AwsEmulator, timing: Timing, kubelet: Kubelet, truth: GroundTruth
    ) -> None:
        self.kube = kube
        self.aws = aws
        self.timing = timing
        self.kubelet = kubelet
        self.truth = truth
        self._batch_start: float | None = None
        self._nominated: dict[str, str] = {}  # pod uid -> claim name
        self._timers: dict[str, ClaimTimers] = {}
        self._command: Command | None = None
        self._next_disruption = 0.0
        self._empty_since: dict[str, float] = {}
        self._termination_retry: dict[str, float] = {}  # pod uid -> next eviction attempt
        self._dirty = True
        # EC2 launches are slow HTTP calls: they run beside the reconcile loop, as Karpenter's do.
        self._launcher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-karpenter-launch")
        self._launching: set[str] = set()
        self.wake: Callable[[], None] = lambda: None
        # The scheduler's view: whether any pod waits for a node (skips scanning every pod).
        self.has_pending: Callable[[], bool] = lambda: True

    def close(self) -> None:
        self._launcher.shutdown(wait=True, cancel_futures=True)

    def observe(self, event: Event) -> None:
        self._dirty = True

    # ---- reconcile ----------------------------------------------------------------------------------

    def reconcile(self, now: float) -> float | None:
        due: list[float] = []
        self._provision(now, due)
        self._launch_pending(now)
        self._lifecycle(now, due)
        self._terminate(now, due)
        if now >= self._next_disruption or self._command is not None:
            self._disrupt(now, due)
            if self._command is None and now >= self._next_disruption:
                self._next_disruption = now + self.timing.karpenter_disruption_poll
        self._status(now)
        if self._has_karpenter_nodes() or self._command is not None:
            due.append(self._next_disruption)
        # Waiting on something (a replacement, a terminating pod) is a poll, not a busy loop.
        return max(min(due), now + 1.0) if due else None

    def _has_karpenter_nodes(self) -> bool:
        return self.kube.store.count(self.kube.nodeclaims) > 0

    # ---- provisioning -------------------------------------------------------------------------------

    def _pending_pods(self) -> list[JSON]:
        kube = self.kube
        if not self.has_pending():
            return []
        claims = {c["metadata"]["name"] for c in kube.objects("nodeclaims")}
        out = []
        for pod in kube.store.iter_all(kube.pods):
            if (
                pod.get("spec", {}).get("nodeName")
                or pod["metadata"].get("deletionTimestamp")
                or terminal(pod)
            ):
                self._nominated.pop(pod["metadata"]["uid"], None)
                continue
            c = condition(pod, "PodScheduled")
            if c is None or c.get("reason") != "Unschedulable":
                continue
            if self._nominated.get(pod["metadata"]["uid"]) in claims:
                continue
            out.append(pod)
        return out

    def _provision(self, now: float, due: list[float]) -> None:
        kube = self.kube
        with kube.lock:
            pools = sorted(
                kube.objects("nodepools"),
                key=lambda p: (-int(p["spec"].get("weight", 0) or 0), p["metadata"]["name"]),
            )
            if not pools:
                return
            pending = self._pending_pods()
            if not pending:
                if not self.has_pending():
                    self._nominated.clear()  # every pod is bound: nothing waits for a claim
                self._batch_start = None
                return
            if self._batch_start is None:
                self._batch_start = now
            if now < self._batch_start + self.timing.karpenter_batch:
                due.append(self._batch_start + self.timing.karpenter_batch)
                return
            self._batch_start = None
            overhead = self._daemonset_overhead()
            for pool in pools:
                if pool["metadata"].get("deletionTimestamp"):
                    continue
                nodeclass = self._nodeclass_of(pool)
                if nodeclass is None:
                    continue
                fitting = []
                for pod in pending:
                    option = self._option(pool, pod)
                    if option is not None:
                        fitting.append((pod, option))
                if not fitting:
                    continue
                placed = self._pack(pool, nodeclass, fitting, overhead, now)
                pending = [p for p in pending if p["metadata"]["uid"] not in placed]
                if not pending:
                    break

    def _daemonset_overhead(self) -> tuple[float, float]:
        cpu = mem = 0.0
        for ds in self.kube.objects("daemonsets"):
            probe = {"spec": (ds.get("spec") or {}).get("template", {}).get("spec") or {}}
            c, m = pod_requests(probe)
            cpu += c
            mem += m
        return cpu, mem

    def _nodeclass_of(self, pool: JSON) -> JSON | None:
        ref = (((pool.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeClassRef") or {}
        return self.kube.store.get(self.kube.nodeclasses, "", ref.get("name", ""))

    def _allowed(self, pool: JSON, key: str, universe: list[str]) -> list[str]:
        reqs = pool["spec"]["template"]["spec"].get("requirements") or []
        return [
            v for v in universe if all(expression_matches(r, {key: v}) for r in reqs if r.get("key") == key)
        ]

    def _option(self, pool: JSON, pod: JSON) -> tuple[str, str, str] | None:
        """(zone, capacity type, instance type) a node of this pool could have for this pod, or None."""
        template = pool["spec"]["template"]
        tspec = template["spec"]
        if untolerated_taint(pod, tspec.get("taints") or []) is not None:
            return None
        base = dict((template.get("metadata") or {}).get("labels") or {})
        base.update(
            {
                NODEPOOL: pool["metadata"]["name"],
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                NODECLASS: tspec["nodeClassRef"]["name"],
            }
        )
        zones = self._allowed(pool, ZONE, list(self.aws.seeded.subnets))
        kinds = self._allowed(pool, CAPACITY_TYPE, ["on-demand", "spot"])
        types = (
            self._allowed(pool, INSTANCE_TYPE, sorted(INSTANCE_TYPES))
            if any(r.get("key") == INSTANCE_TYPE for r in tspec.get("requirements") or ())
            else list(DEFAULT_TYPES)
        )
        cpu, mem = pod_requests(pod)
        for zone, kind, itype in product(zones, kinds, sorted(types, key=lambda t: capacity(t))):
            labels = dict(base, **{ZONE: zone, CAPACITY_TYPE: kind, INSTANCE_TYPE: itype})
            if not pod_fits_labels(pod, labels, ""):
                continue
            a_cpu, a_mem, _ = allocatable(itype)
            if cpu <= quantity(a_cpu) and mem <= quantity(a_mem):
                return zone, kind, itype
        return None

    def _pack(
        self,
        pool: JSON,
        nodeclass: JSON,
        fitting: list[tuple[JSON, tuple[str, str, str]]],
        overhead: tuple[float, float],
        now: float,
    ) -> set[str]:
        """First-fit decreasing onto new NodeClaims; returns the uids of the pods placed."""
        placed: set[str] = set()
        types = sorted(
            {o[2] for _, o in fitting}
            | set(
                DEFAULT_TYPES
                if not any(
                    r.get("key") == INSTANCE_TYPE
                    for r in pool["spec"]["template"]["spec"].get("requirements") or ()
                )
                else ()
            ),
            key=capacity,
        )
        largest = types[-1]
        l_cpu, l_mem, l_pods = allocatable(largest)
        bins: list[tuple[str, str, list[JSON], float, float]] = []
        for pod, (zone, kind, _) in sorted(fitting, key=lambda po: -pod_requests(po[0])[0]):
            cpu, mem = pod_requests(pod)
            for i, (bz, bk, pods, bc, bm) in enumerate(bins):
                if (
                    (bz, bk) == (zone, kind)
                    and bc + cpu <= quantity(l_cpu)
                    and bm + mem <= quantity(l_mem)
                    and len(pods) < int(l_pods) - 3
                ):
                    bins[i] = (bz, bk, [*pods, pod], bc + cpu, bm + mem)
                    break
            else:
                bins.append((zone, kind, [pod], overhead[0] + cpu, overhead[1] + mem))
        for zone, kind, pods, cpu, mem in bins:
            itype = next(
                (
                    t
                    for t in types
                    if cpu <= quantity(allocatable(t)[0]) and mem <= quantity(allocatable(t)[1])
                ),
                largest,
            )
            if not self._within_limits(pool, itype):
                log.info("nodepool %s: limits reached", pool["metadata"]["name"])
                break
            claim = self._create_claim(pool, nodeclass, itype, zone, kind, now)
            if claim is None:
                break
            for pod in pods:
                self._nominated[pod["metadata"]["uid"]] = claim["metadata"]["name"]
                placed.add(pod["metadata"]["uid"])
                self.kube.event(
                    pod,
                    "Nominated",
                    f"Pod should schedule on: nodeclaim/{claim['metadata']['name']}",
                    component="karpenter",
                )
        return placed

    def _within_limits(self, pool: JSON, itype: str) -> bool:
        limits = pool["spec"].get("limits") or {}
        if not limits:
            return True
        name = pool["metadata"]["name"]
        cpu = mem = 0.0
        for c in self.kube.objects("nodeclaims"):
            if (c["metadata"].get("labels") or {}).get(NODEPOOL) == name:
                vcpu, gib, _ = capacity((c["metadata"].get("labels") or {}).get(INSTANCE_TYPE, ""))
                cpu += vcpu
                mem += gib * 1024**3
        vcpu, gib, _ = capacity(itype)
        if "cpu" in limits and cpu + vcpu > quantity(limits["cpu"]):
            return False
        return not ("memory" in limits and mem + gib * 1024**3 > quantity(limits["memory"]))

    def hashes(self, pool: JSON, nodeclass: JSON | None) -> tuple[str, str]:
        pool_hash = template_hash(pool["spec"].get("template") or {})
        class_hash = template_hash((nodeclass or {}).get("spec", {}).get("amiSelectorTerms") or [])
        return pool_hash, class_hash

    def _create_claim(
        self, pool: JSON, nodeclass: JSON, itype: str, zone: str, kind: str, now: float
    ) -> JSON | None:
        template = pool["spec"]["template"]
        tspec = template["spec"]
        pool_name = pool["metadata"]["name"]
        pool_hash, class_hash = self.hashes(pool, nodeclass)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update(
            {
                NODEPOOL: pool_name,
                NODECLASS: nodeclass["metadata"]["name"],
                INSTANCE_TYPE: itype,
                ZONE: zone,
                CAPACITY_TYPE: kind,
            }
        )
        requirements = [
            r
            for r in tspec.get("requirements") or []
            if r.get("key") not in (INSTANCE_TYPE, ZONE, CAPACITY_TYPE)
        ]
        requirements += [
            {"key": INSTANCE_TYPE, "operator": "In", "values": [itype]},
            {"key": ZONE, "operator": "In", "values": [zone]},
            {"key": CAPACITY_TYPE, "operator": "In", "values": [kind]},
            {"key": NODEPOOL, "operator": "In", "values": [pool_name]},
        ]
        spec: JSON = {
            "nodeClassRef": dict(tspec["nodeClassRef"]),
            "requirements": requirements,
            "resources": {"requests": {"pods": "1"}},
        }
        for key in ("taints", "startupTaints", "expireAfter", "terminationGracePeriod"):
            if key in tspec:
                spec[key] = self.kube.copy({"v": tspec[key]})["v"]
        claim: JSON = {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodeClaim",
            "metadata": {
                "name": f"{pool_name}-{random_suffix(5)}",
                "labels": labels,
                "finalizers": [TERMINATION_FINALIZER],
                "annotations": {
                    POOL_HASH: pool_hash,
                    "karpenter.sh/nodepool-hash-version": "v3",
                    CLASS_HASH: class_hash,
                    "karpenter.k8s.aws/ec2nodeclass-hash-version": "v4",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "karpenter.sh/v1",
                        "kind": "NodePool",
                        "name": pool_name,
                        "uid": pool["metadata"]["uid"],
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        try:
            created = self.kube.store.create(self.kube.nodeclaims, claim)
        except errors.ApiError as e:
            log.warning("nodeclaim for %s refused: %s", pool_name, e)
            return None
        status: JSON = {}
        set_condition(
            status, "Launched", "Unknown", "AwaitingReconciliation", "object is awaiting reconciliation", now
        )
        set_condition(
            status,
            "Registered",
            "Unknown",
            "AwaitingReconciliation",
            "object is awaiting reconciliation",
            now,
        )
        set_condition(
            status,
            "Initialized",
            "Unknown",
            "AwaitingReconciliation",
            "object is awaiting reconciliation",
            now,
        )
        set_condition(
            status, "Ready", "Unknown", "AwaitingReconciliation", "object is awaiting reconciliation", now
        )
        self.kube.update_status("nodeclaims", created, status)
        self.kube.event(
            created, "Launching", f"Launching NodeClaim: {itype} {zone} {kind}", component="karpenter"
        )
        return created

    # ---- launch and lifecycle -----------------------------------------------------------------------

    def _launch_pending(self, now: float) -> None:
        kube = self.kube
        with kube.lock:
            todo = [
                c
                for c in kube.objects("nodeclaims")
                if not (c.get("status") or {}).get("providerID")
                and not c["metadata"].get("deletionTimestamp")
                and c["metadata"]["name"] not in self._launching
            ]
            launches = [
                (c, self.kube.store.get(kube.nodeclasses, "", c["spec"]["nodeClassRef"]["name"]))
                for c in todo
            ]
        for claim, nodeclass in launches:
            if nodeclass is None:
                continue
            self._launching.add(claim["metadata"]["name"])
            self._launcher.submit(self._launch, claim, nodeclass, now)

    def _launch(self, claim: JSON, nodeclass: JSON, now: float) -> None:
        kube = self.kube
        try:
            labels = claim["metadata"].get("labels") or {}
            terms = (nodeclass.get("spec") or {}).get("amiSelectorTerms") or [{}]
            ami = terms[0].get("alias") or terms[0].get("id") or terms[0].get("ssmParameter") or "al2@latest"
            http_tokens = ((nodeclass.get("spec") or {}).get("metadataOptions") or {}).get(
                "httpTokens", "required"
            )
            try:
                instance = self.aws.launch_instance(
                    nodeclaim=claim["metadata"]["name"],
                    nodepool=labels.get(NODEPOOL, ""),
                    nodeclass=nodeclass["metadata"]["name"],
                    instance_type=labels.get(INSTANCE_TYPE, "m5.large"),
                    zone=labels.get(ZONE, ""),
                    ami=ami,
                    http_tokens="optional" if http_tokens == "optional" else "required",
                )
            except Exception as e:
                log.warning("launch of %s failed: %s", claim["metadata"]["name"], e)
                kube.event(claim, "LaunchFailed", str(e), component="karpenter", warning=True)
                self._remove_claim(claim)
                return
            self._launched(claim, nodeclass, instance, now)
        finally:
            self._launching.discard(claim["metadata"]["name"])
            self.wake()

    def _launched(self, claim: JSON, nodeclass: JSON, instance: NodeInstance, now: float) -> None:
        kube = self.kube
        bottlerocket = instance.ami_family is AmiFamily.BOTTLEROCKET
        created_at = now
        labels = dict(claim["metadata"].get("labels") or {})
        labels.update(
            {
                "karpenter.k8s.aws/instance-family": instance.instance_type.split(".")[0],
                "karpenter.k8s.aws/instance-size": instance.instance_type.split(".")[-1],
                "karpenter.k8s.aws/instance-cpu": str(capacity(instance.instance_type)[0]),
            }
        )
        taints = [
            *(claim["spec"].get("taints") or []),
            *(claim["spec"].get("startupTaints") or []),
            dict(UNREGISTERED_TAINT),
        ]
        node = node_for(instance, region=self.aws.seeded.region, labels=labels, taints=taints, now=now)
        node["metadata"]["annotations"]["karpenter.sh/nodepool-hash"] = claim["metadata"]["annotations"][
            POOL_HASH
        ]
        node["metadata"]["annotations"]["karpenter.k8s.aws/ec2nodeclass-hash"] = claim["metadata"][
            "annotations"
        ][CLASS_HASH]
        with kube.lock:
            current = kube.store.get(kube.nodeclaims, "", claim["metadata"]["name"])
            if current is None or current["metadata"].get("deletionTimestamp"):
                self.aws.terminate_instance(instance.instance_id)
                if current is not None:
                    self._release(current)
                return
            vcpu, gib, pods = capacity(instance.instance_type)
            a_cpu, a_mem, a_pods = allocatable(instance.instance_type)
            status = kube.copy(current.get("status") or {})
            status.update(
                {
                    "providerID": instance.provider_id,
                    "imageID": instance.image_id,
                    "nodeName": instance.name,
                    "capacity": {
                        "cpu": str(vcpu),
                        "memory": f"{gib}Gi",
                        "pods": str(pods),
                        "ephemeral-storage": "20Gi",
                    },
                    "allocatable": {
                        "cpu": a_cpu,
                        "memory": a_mem,
                        "pods": a_pods,
                        "ephemeral-storage": "17Gi",
                    },
                }
            )
            set_condition(status, "Launched", "True", "Launched", "", now)
            kube.update_status("nodeclaims", current, status)
            kube.create("nodes", node, keep_status=True)
            elapsed = self.kube.now() - created_at
            self._timers[claim["metadata"]["name"]] = ClaimTimers(
                registered_at=created_at + self.timing.karpenter_registered,
                instance=instance,
                bottlerocket=bottlerocket,
            )
            self.kubelet.boot(
                instance.name, max(0.0, self.timing.karpenter_node_ready(bottlerocket) - elapsed)
            )
        self.truth.node(
            instance.name,
            os="Bottlerocket" if bottlerocket else "AL2",
            instanceId=instance.instance_id,
            nodePool=labels.get(NODEPOOL),
            nodeClaim=claim["metadata"]["name"],
            launched=now,
        )

    def _lifecycle(self, now: float, due: list[float]) -> None:
        kube = self.kube
        with kube.lock:
            pools = {p["metadata"]["name"]: p for p in kube.objects("nodepools")}
            for claim in kube.objects("nodeclaims"):
                name = claim["metadata"]["name"]
                status = claim.get("status") or {}
                node_name = status.get("nodeName")
                node = kube.store.get(kube.nodes, "", node_name) if node_name else None
                if node is None:
                    continue
                timers = self._timers.get(name)
                new_status = kube.copy(status)
                changed = False
                if not condition_true(claim, "Registered"):
                    if timers is not None and now < timers.registered_at:
                        due.append(timers.registered_at)
                    else:
                        self._register(node, now)
                        changed |= set_condition(new_status, "Registered", "True", "Registered", "", now)
                elif not condition_true(claim, "Initialized") and node_ready(node):
                    self._initialize(node)
                    changed |= set_condition(new_status, "Initialized", "True", "Initialized", "", now)
                    changed |= set_condition(new_status, "Ready", "True", "Ready", "", now)
                pool = pools.get((claim["metadata"].get("labels") or {}).get(NODEPOOL, ""))
                ann = claim["metadata"].get("annotations") or {}
                if pool is not None and POOL_HASH not in ann:
                    # A claim from before the controllers ran (a scenario's seed): adopt it with the
                    # current hashes, as Karpenter re-stamps claims after a hash-version change.
                    adopted = kube.copy(claim)
                    pool_hash, class_hash = self.hashes(pool, self._nodeclass_of(pool))
                    adopted["metadata"].setdefault("annotations", {}).update(
                        {POOL_HASH: pool_hash, CLASS_HASH: class_hash}
                    )
                    kube.update("nodeclaims", adopted)
                elif pool is not None:
                    pool_hash, class_hash = self.hashes(pool, self._nodeclass_of(pool))
                    drifted = ann.get(POOL_HASH) != pool_hash or ann.get(CLASS_HASH) != class_hash
                    if drifted:
                        reason = "NodePoolDrifted" if ann.get(POOL_HASH) != pool_hash else "AMIDrift"
                        changed |= set_condition(new_status, "Drifted", "True", reason, "", now)
                    elif condition(claim, "Drifted") is not None:
                        new_status["conditions"] = [
                            c for c in new_status.get("conditions") or [] if c.get("type") != "Drifted"
                        ]
                        changed = True
                if changed:
                    kube.update_status("nodeclaims", claim, new_status)

    def _register(self, node: JSON, now: float) -> None:
        new = self.kube.copy(node)
        new["spec"]["taints"] = [
            t for t in new["spec"].get("taints") or [] if t.get("key") != UNREGISTERED_TAINT["key"]
        ]
        if not new["spec"]["taints"]:
            del new["spec"]["taints"]
        new["metadata"]["labels"][REGISTERED] = "true"
        self.kube.update("nodes", new)
        self.truth.node(node["metadata"]["name"], registered=now)

    def _initialize(self, node: JSON) -> None:
        new = self.kube.copy(node)
        new["metadata"]["labels"][INITIALIZED] = "true"
        self.kube.update("nodes", new)

    # ---- disruption ---------------------------------------------------------------------------------

    def _claims_by_pool(self) -> dict[str, list[JSON]]:
        out: dict[str, list[JSON]] = {}
        for c in self.kube.objects("nodeclaims"):
            out.setdefault((c["metadata"].get("labels") or {}).get(NODEPOOL, ""), []).append(c)
        return out

    def _budget(self, pool: JSON, reason: str, claims: list[JSON]) -> int:
        budgets = ((pool.get("spec") or {}).get("disruption") or {}).get("budgets") or [{"nodes": "10%"}]
        total = len(claims)
        allowed = total
        for b in budgets:
            if b.get("schedule"):
                continue  # cron windows are not emulated: a scheduled budget never applies
            reasons = b.get("reasons")
            if reasons and reason not in reasons:
                continue
            value = str(b.get("nodes", "10%"))
            n = math.ceil(int(value[:-1]) * total / 100) if value.endswith("%") else int(value)
            allowed = min(allowed, n)
        disrupting = sum(
            1 for c in claims if c["metadata"].get("deletionTimestamp") or self._node_tainted_disrupted(c)
        )
        return allowed - disrupting

    def _node_tainted_disrupted(self, claim: JSON) -> bool:
        node_name = (claim.get("status") or {}).get("nodeName")
        node = self.kube.store.get(self.kube.nodes, "", node_name) if node_name else None
        return node is not None and any(
            t.get("key") == DISRUPTED_TAINT["key"] for t in node["spec"].get("taints") or []
        )

    def _workload_pods(self, node_name: str) -> list[JSON]:
        return [p for p in self.kube.pods_on(node_name) if not terminal(p) and not is_daemonset_pod(p)]

    def _blocked(self, node: JSON) -> bool:
        if (node["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT) == "true":
            return True
        return any(
            (p["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT) == "true"
            for p in self._workload_pods(node["metadata"]["name"])
        )

    def _disrupt(self, now: float, due: list[float]) -> None:
        if self._command is not None:
            self._advance(now, due)
            return
        kube = self.kube
        with kube.lock:
            pools = {p["metadata"]["name"]: p for p in kube.objects("nodepools")}
            by_pool = self._claims_by_pool()
            for pool_name, claims in sorted(by_pool.items()):
                pool = pools.get(pool_name)
                if pool is None:
                    continue
                candidates = []
                for claim in claims:
                    node_name = str((claim.get("status") or {}).get("nodeName") or "")
                    node = kube.store.get(kube.nodes, "", node_name) if node_name else None
                    if (
                        node is None
                        or claim["metadata"].get("deletionTimestamp")
                        or not condition_true(claim, "Initialized")
                    ):
                        continue
                    if self._blocked(node):
                        continue
                    empty = not self._workload_pods(node_name)
                    if empty and claim["metadata"]["name"] in set(self._nominated.values()):
                        empty = False
                    if empty:
                        self._empty_since.setdefault(node_name, now)
                    else:
                        self._empty_since.pop(node_name, None)
                    if condition_true(claim, "Drifted"):
                        candidates.append(("Drifted", claim, node, empty))
                    elif empty and self._consolidatable(pool, node_name, now):
                        candidates.append(("Empty", claim, node, True))
                for reason, claim, node, empty in candidates:
                    if self._budget(pool, reason, claims) <= 0:
                        continue
                    self._start(pool, reason, claim, node, empty, now)
                    return

    def _consolidatable(self, pool: JSON, node_name: str, now: float) -> bool:
        disruption = pool["spec"].get("disruption") or {}
        if disruption.get("consolidationPolicy", "WhenEmptyOrUnderutilized") not in (
            "WhenEmpty",
            "WhenEmptyOrUnderutilized",
        ):
            return False
        after = duration_seconds(disruption.get("consolidateAfter", "0s"))
        return after is not None and now - self._empty_since.get(node_name, now) >= after

    def _start(self, pool: JSON, reason: str, claim: JSON, node: JSON, empty: bool, now: float) -> None:
        kube = self.kube
        new = kube.copy(node)
        taints = new["spec"].get("taints") or []
        if not any(t.get("key") == DISRUPTED_TAINT["key"] for t in taints):
            new["spec"]["taints"] = [*taints, dict(DISRUPTED_TAINT)]
            kube.update("nodes", new)
        replacement = None
        if not empty:
            nodeclass = self._nodeclass_of(pool)
            labels = claim["metadata"].get("labels") or {}
            if nodeclass is not None:
                created = self._create_claim(
                    pool,
                    nodeclass,
                    labels.get(INSTANCE_TYPE, "m5.large"),
                    labels.get(ZONE, ""),
                    labels.get(CAPACITY_TYPE, "on-demand"),
                    now,
                )
                replacement = created["metadata"]["name"] if created else None
        self._command = Command(
            claim["metadata"]["name"],
            node["metadata"]["name"],
            pool["metadata"]["name"],
            reason,
            replacement,
            now,
        )
        kube.event(
            node,
            "DisruptionLaunching" if replacement else "DisruptionTerminating",
            f"Disrupting Node: {reason}",
            component="karpenter",
        )
        self.truth.node(node["metadata"]["name"], disrupted={"at": now, "reason": reason})
        log.info("disrupting %s (%s), replacement %s", node["metadata"]["name"], reason, replacement)

    def _advance(self, now: float, due: list[float]) -> None:
        cmd = self._command
        assert cmd is not None
        kube = self.kube
        if cmd.replacement is not None:
            with kube.lock:
                rep = kube.store.get(kube.nodeclaims, "", cmd.replacement)
            if rep is None:
                # The replacement failed to launch: give up this command (the node stays, untainted).
                self._abort(cmd)
                return
            if not condition_true(rep, "Initialized"):
                return
        if not self._drain(cmd.node, cmd.reason, cmd.retry, now, due):
            return
        with kube.lock:
            claim = kube.store.get(kube.nodeclaims, "", cmd.claim)
            node = kube.store.get(kube.nodes, "", cmd.node)
        if node is not None:
            try:
                self.aws.terminate_instance(instance_id_of(node))
            except Exception as e:
                log.warning("terminate %s: %s", cmd.node, e)
            kube.delete("nodes", node)
        if claim is not None:
            self._remove_claim(claim)
        self._timers.pop(cmd.claim, None)
        self._empty_since.pop(cmd.node, None)
        self.truth.node(cmd.node, deleted=now)
        self._command = None
        self._next_disruption = now + self.timing.karpenter_disruption_poll

    def _drain(
        self, node_name: str, reason: str, retry: dict[str, float], now: float, due: list[float]
    ) -> bool:
        """Evict the node's workload pods (non-critical first, 429s retried); True once none is left."""
        pods = self._workload_pods(node_name)
        if not pods:
            return True
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        normal = [p for p in live if not critical(p)]
        for pod in normal or live:
            uid = pod["metadata"]["uid"]
            if retry.get(uid, 0.0) > now:
                due.append(retry[uid])
                continue
            try:
                self.kube.api.disruption.evict(
                    pod["metadata"]["namespace"], pod["metadata"]["name"], None, by="karpenter"
                )
                self.kube.event(pod, "Evicted", f"Evicted pod: {reason}", component="karpenter")
            except errors.ApiError:
                retry[uid] = now + self.timing.eviction_retry
                due.append(retry[uid])
        return False

    def _terminate(self, now: float, due: list[float]) -> None:
        """NodeClaims deleted through the API (not by a disruption command): Karpenter's termination
        controller taints and drains the node, terminates the instance, deletes the Node, and only
        then lets the NodeClaim go."""
        kube = self.kube
        self._termination_retry = {uid: t for uid, t in self._termination_retry.items() if t > now}
        with kube.lock:
            deleting = [
                c
                for c in kube.objects("nodeclaims")
                if c["metadata"].get("deletionTimestamp")
                and (self._command is None or self._command.claim != c["metadata"]["name"])
                and c["metadata"]["name"] not in self._launching
            ]
        for claim in deleting:
            status = claim.get("status") or {}
            node_name = str(status.get("nodeName") or "")
            with kube.lock:
                node = kube.store.get(kube.nodes, "", node_name) if node_name else None
            if node is not None:
                taints = node["spec"].get("taints") or []
                if not any(t.get("key") == DISRUPTED_TAINT["key"] for t in taints):
                    tainted = kube.copy(node)
                    tainted["spec"]["taints"] = [*taints, dict(DISRUPTED_TAINT)]
                    kube.update("nodes", tainted)
                    self.truth.node(node_name, disrupted={"at": now, "reason": "Deleted"})
                if not self._drain(node_name, "Deleted", self._termination_retry, now, due):
                    continue
            provider_id = str(status.get("providerID") or "")
            if provider_id:
                try:
                    self.aws.terminate_instance(provider_id.rsplit("/", 1)[-1])
                except Exception as e:
                    log.warning("terminate %s: %s", provider_id, e)
            if node is not None:
                kube.delete("nodes", node)
                self.truth.node(node_name, deleted=now)
            self._timers.pop(claim["metadata"]["name"], None)
            self._empty_since.pop(node_name, None)
            self._release(claim)

    def _remove_claim(self, claim: JSON) -> None:
        """Delete a NodeClaim whose instance and Node are already gone (no termination left to do)."""
        self.kube.delete("nodeclaims", claim)
        current = self.kube.store.get(self.kube.nodeclaims, "", claim["metadata"]["name"])
        if current is not None and current["metadata"]["uid"] == claim["metadata"]["uid"]:
            self._release(current)

    def _release(self, claim: JSON) -> None:
        finalizers = claim["metadata"].get("finalizers") or []
        if TERMINATION_FINALIZER in finalizers:
            released = self.kube.copy(claim)
            released["metadata"]["finalizers"] = [f for f in finalizers if f != TERMINATION_FINALIZER]
            self.kube.update("nodeclaims", released)

    def _abort(self, cmd: Command) -> None:
        node = self.kube.store.get(self.kube.nodes, "", cmd.node)
        if node is not None:
            new = self.kube.copy(node)
            new["spec"]["taints"] = [
                t for t in new["spec"].get("taints") or [] if t.get("key") != DISRUPTED_TAINT["key"]
            ]
            if not new["spec"]["taints"]:
                del new["spec"]["taints"]
            self.kube.update("nodes", new)
        self._command = None

    # ---- status -------------------------------------------------------------------------------------

    def _status(self, now: float) -> None:
        if not self._dirty:
            return
        self._dirty = False
        kube = self.kube
        with kube.lock:
            by_pool = self._claims_by_pool()
            for pool in kube.objects("nodepools"):
                claims = by_pool.get(pool["metadata"]["name"], [])
                cpu = mem = 0.0
                for c in claims:
                    vcpu, gib, _ = capacity((c["metadata"].get("labels") or {}).get(INSTANCE_TYPE, ""))
                    cpu += vcpu
                    mem += gib
                status = kube.copy(pool.get("status") or {})
                status["resources"] = {
                    "cpu": str(int(cpu)),
                    "memory": f"{int(mem)}Gi",
                    "nodes": str(len(claims)),
                    "pods": "0",
                    "ephemeral-storage": "0",
                }
                status["nodes"] = len(claims)
                set_condition(status, "Ready", "True", "Ready", "", now)
                set_condition(status, "NodeClassReady", "True", "NodeClassReady", "", now)
                set_condition(status, "ValidationSucceeded", "True", "ValidationSucceeded", "", now)
                kube.update_status("nodepools", pool, status)
            for nc in kube.objects("nodeclasses"):
                status = kube.copy(nc.get("status") or {})
                set_condition(status, "Ready", "True", "Ready", "", now)
                kube.update_status("nodeclasses", nc, status)
