"""The Kubernetes adapter: the only package that imports `kubernetes`."""

from bot.adapters.kube.client import Expired, Identity, KubeAdapter, KubeConfigError, Timeouts
from bot.adapters.kube.timestamps import parse_time

__all__ = ["Expired", "Identity", "KubeAdapter", "KubeConfigError", "Timeouts", "parse_time"]
