"""The kubelet of every node: node readiness after boot, pod start (image pull, containers, Ready),
crash loops, graceful termination, and the pod garbage collector for pods of vanished nodes."""

from __future__ import annotations

import hashlib
import random

from sandbox.controllers.common import is_bottlerocket, node_ready, set_condition
from sandbox.controllers.faults import Faults
from sandbox.controllers.groundtruth import GroundTruth
from sandbox.controllers.hostfs import read_only_host_mount
from sandbox.controllers.kube import Kube
from sandbox.controllers.timing import Timing
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import Event, ObjKey, rfc3339

NOT_READY_TAINT = "node.kubernetes.io/not-ready"


class Kubelet:
    def __init__(self, kube: Kube, timing: Timing, faults: Faults, truth: GroundTruth) -> None:
        self.kube = kube
        self.timing = timing
        self.faults = faults
        self.truth = truth
        self._booting: dict[str, float] = {}  # node -> emulated time it turns Ready
        self._images: dict[str, dict[str, float]] = {}  # node -> image -> available at
        self._starting: dict[str, float] = {}  # pod uid -> containers started at
        self._restart: dict[str, float] = {}  # pod uid -> next crash-loop restart
        self._terminating: dict[str, float] = {}  # pod uid -> removal time
        self._dirty: set[ObjKey] = set()
        self._scan_all = True

    # ---- wiring -----------------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        if event.resource == "/pods":
            meta = event.object["metadata"]
            self._dirty.add((meta.get("namespace", ""), meta["name"]))
        elif event.resource == "/nodes":
            # A node turning Ready (or going away) changes what its pods can do.
            self._scan_all = True

    def graceful_seconds(self, pod: JSON, requested: int | None) -> int:
        """The store's graceful-deletion hook: how long a deleted pod stays Terminating."""
        node = pod.get("spec", {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if self.kube.store.get(self.kube.nodes, "", node) is None:
            return 0
        grace = (
            requested
            if requested is not None
            else pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        )
        return max(0, int(min(float(grace), self.timing.termination_grace_cap)))

    def boot(self, node_name: str, ready_in: float) -> None:
        """A node just registered by a controller: Ready after `ready_in` emulated seconds."""
        self._booting[node_name] = self.kube.now() + ready_in

    # ---- reconcile ----------------------------------------------------------------------------------

    def reconcile(self, now: float) -> float | None:
        kube = self.kube
        with kube.lock:
            for name, due in list(self._booting.items()):
                if now >= due:
                    node = kube.store.get(kube.nodes, "", name)
                    if node is None:
                        del self._booting[name]
                    elif not self.faults.never_ready(node):
                        self._make_ready(node, now)
                        del self._booting[name]
            if self._scan_all:
                self._scan_all = False
                keys = [
                    (p["metadata"]["namespace"], p["metadata"]["name"])
                    for p in kube.store.iter_all(kube.pods)
                ]
            else:
                keys = list(self._dirty)
            self._dirty.clear()
            due_uids = {u for u, t in self._starting.items() if t <= now}
            due_uids |= {u for u, t in self._restart.items() if t <= now}
            due_uids |= {u for u, t in self._terminating.items() if t <= now}
            for uid in due_uids:
                obj = kube.store.by_uid(uid)
                if obj is None:
                    self._forget(uid)
                else:
                    keys.append((obj["metadata"]["namespace"], obj["metadata"]["name"]))
            for ns, name in sorted(set(keys)):
                pod = kube.store.get(kube.pods, ns, name)
                if pod is not None:
                    self._sync_pod(pod, now)
        pending = [*self._starting.values(), *self._restart.values(), *self._terminating.values()]
        # A node held NotReady by a fault is looked at again every few seconds, not in a busy loop.
        pending += [t if t > now else now + 5.0 for t in self._booting.values()]
        return min(pending) if pending else None

    def _forget(self, uid: str) -> None:
        for d in (self._starting, self._restart, self._terminating):
            d.pop(uid, None)

    def _make_ready(self, node: JSON, now: float) -> None:
        status = self.kube.copy(node.get("status") or {})
        set_condition(status, "Ready", "True", "KubeletReady", "kubelet is posting ready status", now)
        self.kube.update_status("nodes", node, status)
        spec_taints = node.get("spec", {}).get("taints") or []
        if any(t.get("key") == NOT_READY_TAINT for t in spec_taints):
            new = self.kube.copy(node)
            new["spec"]["taints"] = [t for t in spec_taints if t.get("key") != NOT_READY_TAINT]
            if not new["spec"]["taints"]:
                del new["spec"]["taints"]
            self.kube.update("nodes", new)
        self.truth.node(node["metadata"]["name"], ready=now)
        self.kube.event(
            node,
            "NodeReady",
            f"Node {node['metadata']['name']} status is now: NodeReady",
            component="kubelet",
            host=node["metadata"]["name"],
        )

    def _sync_pod(self, pod: JSON, now: float) -> None:
        kube = self.kube
        meta = pod["metadata"]
        uid = meta["uid"]
        node_name = pod.get("spec", {}).get("nodeName")
        node = kube.store.get(kube.nodes, "", node_name) if node_name else None
        if meta.get("deletionTimestamp"):
            if node is None:
                kube.delete("pods", pod, grace_period=0)
                self._forget(uid)
                return
            due = self._terminating.setdefault(uid, now + float(meta.get("deletionGracePeriodSeconds") or 0))
            if now >= due:
                kube.delete("pods", pod, grace_period=0)
                self._forget(uid)
            return
        if not node_name:
            return
        if node is None:
            # The pod garbage collector: pods bound to a node that no longer exists.
            kube.delete("pods", pod, grace_period=0)
            self._forget(uid)
            return
        if not node_ready(node):
            return
        status = pod.get("status") or {}
        phase = status.get("phase")
        if phase in ("Succeeded", "Failed"):
            return
        if not status.get("containerStatuses"):
            self._admit(pod, node, now)
        elif uid in self._starting and now >= self._starting[uid]:
            del self._starting[uid]
            refused = read_only_host_mount(pod) if is_bottlerocket(node) else None
            crash = self.faults.crash(pod) if is_bottlerocket(node) else None
            if refused is not None:
                self._crash(pod, node, now, refused.path, refused.volume)
            elif crash is not None:
                self._crash(pod, node, now, crash.path)
            else:
                self._run(pod, node, now)
        elif uid in self._restart and now >= self._restart[uid]:
            self._crash(pod, node, now, None)
        elif uid not in self._starting and uid not in self._restart and phase == "Pending":
            # Controllers restarted mid-start: finish starting now.
            self._starting[uid] = now

    def _containers(self, pod: JSON) -> list[JSON]:
        return list(pod.get("spec", {}).get("containers") or [])

    def _admit(self, pod: JSON, node: JSON, now: float) -> None:
        node_name = node["metadata"]["name"]
        images = self._images.setdefault(node_name, {})
        ready_at = now
        for c in self._containers(pod):
            image = c.get("image", "")
            if image in images:
                available = images[image]
                if available <= now:
                    self.kube.event(
                        pod,
                        "Pulled",
                        f'Container image "{image}" already present on machine',
                        component="kubelet",
                        host=node_name,
                    )
            else:
                available = now + self.timing.image_pull(is_bottlerocket(node))
                images[image] = available
                self.kube.event(
                    pod, "Pulling", f'Pulling image "{image}"', component="kubelet", host=node_name
                )
            ready_at = max(ready_at, available)
        self._starting[pod["metadata"]["uid"]] = ready_at + self.timing.pod_start
        status = self.kube.copy(pod.get("status") or {})
        status["phase"] = "Pending"
        status["hostIP"] = _internal_ip(node)
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        status["startTime"] = rfc3339(now)
        set_condition(status, "PodReadyToStartContainers", "False", "", "", now)
        set_condition(status, "Initialized", "True", "", "", now)
        set_condition(status, "Ready", "False", "ContainersNotReady", "containers with unready status", now)
        set_condition(
            status, "ContainersReady", "False", "ContainersNotReady", "containers with unready status", now
        )
        status["containerStatuses"] = [
            {
                "name": c.get("name", ""),
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {},
            }
            for c in self._containers(pod)
        ]
        self.kube.update_status("pods", pod, status)

    def _run(self, pod: JSON, node: JSON, now: float) -> None:
        node_name = node["metadata"]["name"]
        status = self.kube.copy(pod.get("status") or {})
        status["phase"] = "Running"
        ip = _pod_ip(node, pod["metadata"]["uid"])
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
        for kind in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
            set_condition(status, kind, "True", "", "", now)
        statuses = []
        for c in self._containers(pod):
            image = c.get("image", "")
            self.kube.event(
                pod, "Pulled", f'Successfully pulled image "{image}"', component="kubelet", host=node_name
            )
            self.kube.event(
                pod, "Created", f"Created container {c.get('name')}", component="kubelet", host=node_name
            )
            self.kube.event(
                pod, "Started", f"Started container {c.get('name')}", component="kubelet", host=node_name
            )
            statuses.append(
                {
                    "name": c.get("name", ""),
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{_hex(image, 64)}",
                    "containerID": f"containerd://{_hex(pod['metadata']['uid'] + c.get('name', ''), 64)}",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": rfc3339(now)}},
                    "lastState": {},
                }
            )
        status["containerStatuses"] = statuses
        self.kube.update_status("pods", pod, status)

    def _crash(self, pod: JSON, node: JSON, now: float, path: str | None, volume: str = "host-path") -> None:
        """CrashLoopBackOff: the container dies at start (a write under Bottlerocket's read-only /usr)."""
        node_name = node["metadata"]["name"]
        uid = pod["metadata"]["uid"]
        if path is not None:
            self.kube.event(
                pod,
                "FailedMount",
                f'MountVolume.SetUp failed for volume "{volume}" : mkdir {path}: read-only file system',
                component="kubelet",
                host=node_name,
                warning=True,
            )
        status = self.kube.copy(pod.get("status") or {})
        status["phase"] = "Running"
        ip = _pod_ip(node, uid)
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
        set_condition(status, "PodReadyToStartContainers", "True", "", "", now)
        set_condition(
            status, "ContainersReady", "False", "ContainersNotReady", "containers with unready status", now
        )
        set_condition(status, "Ready", "False", "ContainersNotReady", "containers with unready status", now)
        previous = status.get("containerStatuses") or [{}]
        restarts = int(previous[0].get("restartCount", 0)) + (0 if path is not None else 1)
        backoff = min(300.0, self.timing.crash_backoff * (2 ** max(0, restarts - 1)))
        statuses = []
        for c in self._containers(pod):
            statuses.append(
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": f"{c.get('image', '').split(':')[0]}@sha256:{_hex(c.get('image', ''), 64)}",
                    "containerID": f"containerd://{_hex(uid + str(restarts), 64)}",
                    "ready": False,
                    "restartCount": restarts,
                    "started": False,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off {int(backoff)}s restarting failed "
                            f"container={c.get('name')} "
                            f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                        }
                    },
                    "lastState": {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": rfc3339(now),
                            "finishedAt": rfc3339(now),
                        }
                    },
                }
            )
        status["containerStatuses"] = statuses
        self.kube.update_status("pods", pod, status)
        if restarts == 1:
            self.kube.event(
                pod,
                "BackOff",
                "Back-off restarting failed container",
                component="kubelet",
                host=node_name,
                warning=True,
            )
        self._restart[uid] = now + backoff


def _internal_ip(node: JSON) -> str:
    for a in (node.get("status") or {}).get("addresses") or ():
        if a.get("type") == "InternalIP":
            return str(a.get("address", ""))
    return "10.0.0.1"


def _pod_ip(node: JSON, uid: str) -> str:
    parts = _internal_ip(node).split(".")
    rnd = random.Random(uid)
    return f"{parts[0]}.{parts[1]}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]
