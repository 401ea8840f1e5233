"""Emulated latencies, in emulated seconds, from public figures (issue 4; the AWS/Snowflake case study).

Bottlerocket nodes become Ready ~5 s sooner than AL2; Bottlerocket's data-volume image cache makes a
fresh node's image pull ~36 s shorter (4 s vs 40 s); Karpenter registers a node ~35 s and makes it
Ready ~55 s after its NodeClaim (published measurements range 30-80 s).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    node_ready_al2: float = 25.0  # instance boot → kubelet Ready (managed node groups)
    node_ready_bottlerocket: float = 20.0
    image_pull_al2: float = 40.0  # first pull of an image on a node
    image_pull_bottlerocket: float = 4.0  # Bottlerocket with the data-volume image cache
    pod_start: float = 2.0  # image present → container started and Ready
    termination_grace_cap: float = 5.0  # min(terminationGracePeriodSeconds, cap)
    karpenter_batch: float = 1.0  # provisioner batching of pending pods
    karpenter_registered: float = 35.0  # NodeClaim created → Node registered
    karpenter_ready: float = 55.0  # NodeClaim created → Node Ready (Bottlerocket; AL2 adds the boot gap)
    karpenter_disruption_poll: float = 10.0  # how often Karpenter's disruption controller looks
    eviction_retry: float = 5.0  # a refused (429) eviction is retried after this
    nodegroup_poll: float = 10.0  # how often the node group controller reads the AWS API
    crash_backoff: float = 10.0  # CrashLoopBackOff: first back-off, doubling, capped at 300 s

    def node_ready(self, bottlerocket: bool) -> float:
        return self.node_ready_bottlerocket if bottlerocket else self.node_ready_al2

    def image_pull(self, bottlerocket: bool) -> float:
        return self.image_pull_bottlerocket if bottlerocket else self.image_pull_al2

    def karpenter_node_ready(self, bottlerocket: bool) -> float:
        gap = 0.0 if bottlerocket else self.node_ready_al2 - self.node_ready_bottlerocket
        return self.karpenter_ready + gap
