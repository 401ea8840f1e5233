"""What runs behind the sandbox's Kubernetes API: scheduler, workload controllers, kubelet, EKS
managed node groups and Karpenter, on the sandbox's scaled clock (docs/sandbox.md, "Controllers")."""

from sandbox.controllers.runtime import Controllers
from sandbox.controllers.timing import Timing

__all__ = ["Controllers", "Timing"]
