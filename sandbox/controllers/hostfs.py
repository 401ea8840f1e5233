"""Bottlerocket's host filesystem as a container sees it through hostPath volumes.

Bottlerocket boots a dm-verity root: `/` and everything on it (`/usr`, `/usr/local`, `/bin`, `/home`…)
is read-only. Writable are the data partition `/local` and what is bind-mounted from it (`/var`,
`/opt`, `/mnt`), and the tmpfs mounts (`/etc` — writable but not persistent —, `/tmp`, `/run`) and
the kernel's pseudo filesystems. A container that mounts a hostPath on the read-only part without
`readOnly: true` fails to start there: the case study's immutable-filesystem incompatibility. AL2's
root filesystem is writable, so the same pod runs on an AL2 node.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.kube.jsontypes import JSON

BOTTLEROCKET_WRITABLE = ("/var", "/opt", "/local", "/mnt", "/etc", "/tmp", "/run", "/dev", "/proc", "/sys")


@dataclass(frozen=True)
class ReadOnlyMount:
    container: str
    volume: str
    path: str  # the hostPath


def is_writable_on_bottlerocket(path: str) -> bool:
    clean = "/" + "/".join(part for part in path.split("/") if part and part != ".")
    return any(clean == top or clean.startswith(top + "/") for top in BOTTLEROCKET_WRITABLE)


def read_only_host_mount(pod: JSON) -> ReadOnlyMount | None:
    """The first writable hostPath mount of the pod that Bottlerocket's read-only root refuses."""
    spec = pod.get("spec") or {}
    host_paths = {
        v.get("name", ""): str(v["hostPath"].get("path", ""))
        for v in spec.get("volumes") or ()
        if isinstance(v.get("hostPath"), dict)
    }
    if not host_paths:
        return None
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for mount in container.get("volumeMounts") or ():
            path = host_paths.get(mount.get("name", ""))
            if path is None or mount.get("readOnly"):
                continue
            if not is_writable_on_bottlerocket(path):
                return ReadOnlyMount(container.get("name", ""), mount.get("name", ""), path)
    return None
