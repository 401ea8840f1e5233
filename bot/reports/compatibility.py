"""Will this workload run on Bottlerocket? A pure scan of its pod spec against Bottlerocket's
documented host: what it can write, what it does not have, what it boots from.

Bottlerocket's filesystem (bottlerocket-os docs, "Filesystem"): `/` and `/usr` — /usr/local too — are
read-only, verified by dm-verity, so a writable hostPath there, or a new top-level directory, fails;
`/etc` is a tmpfs rebuilt from settings at every boot, so edits there do not last; `/var`, `/opt`,
`/local` and `/mnt` are writable. The host has no shell, no package manager and no SSH daemon
(those live in the opt-in admin container), runs containerd only, boots from TOML settings rather
than a shell script, keeps pod data on its data volume (/dev/xvdb) rather than the OS volume, and
loads only the kernel modules its image ships (kernel lockdown).
"""

from __future__ import annotations

import re

from bot.reports.facts import GIB, PodSpecFacts, WorkloadFacts
from bot.reports.reasons import Reason, Severity

# Top-level directories of Bottlerocket's root that a pod may write through a hostPath.
WRITABLE_TOP = frozenset({"var", "opt", "local", "mnt", "run", "tmp", "dev", "proc", "sys"})
# Top-level directories that exist on Bottlerocket but are part of the read-only image.
READ_ONLY_TOP = frozenset({"usr", "bin", "sbin", "lib", "lib64", "boot", "root", "home", "srv", "media"})
DOCKER_SOCKETS = frozenset({"/var/run/docker.sock", "/run/docker.sock", "/var/run/docker", "/run/docker"})

# Labels only AL2 nodes (or only the node group being drained) carry: a Bottlerocket node can't match.
AL2_ONLY_LABELS = frozenset(
    {
        "eks.amazonaws.com/nodegroup",
        "eks.amazonaws.com/nodegroup-image",
        "eks.amazonaws.com/sourceLaunchTemplateId",
        "eks.amazonaws.com/sourceLaunchTemplateVersion",
        "alpha.eksctl.io/nodegroup-name",
        "alpha.eksctl.io/instance-id",
    }
)
_AMI_VALUE = re.compile(r"^ami-[0-9a-f]{8,17}$")
_AL2_VALUE = re.compile(r"amazon[-_ ]?linux[-_ ]?2(?!0)|\bal2\b|amzn2", re.IGNORECASE)

_HOST_ENTRY = re.compile(r"\b(chroot|nsenter)\b")
_PACKAGE_MANAGER = re.compile(r"\b(yum|rpm|dnf|amazon-linux-extras)\b")
_SSH = re.compile(r"\b(sshd?|scp|ssh-keygen)\b")
_MODULES = re.compile(r"\b(modprobe|insmod|rmmod|depmod)\b")


def _norm(path: str) -> str:
    parts = [p for p in path.split("/") if p and p != "."]
    return "/" + "/".join(parts)


def _writable_twin(path: str) -> str:
    """Where a read-only path's data could live instead: /usr/local/bin → /opt/bin,
    /usr/share/cache → /var/lib/cache."""
    last = path.rsplit("/", 1)[-1] or "data"
    return f"/opt/{last}" if last in ("bin", "sbin", "lib", "lib64", "libexec") else f"/var/lib/{last}"


def hostpath_problem(path: str) -> tuple[Severity, str, str, str] | None:
    """(severity, check, reason, fix) for a writable hostPath on Bottlerocket, or None when fine."""
    clean = _norm(path)
    top = clean.split("/")[1] if clean != "/" else ""
    if clean in DOCKER_SOCKETS or clean.endswith("/docker.sock"):
        return None  # reported by the docker.sock rule
    if top == "":
        return (
            Severity.BLOCKER,
            "hostpath-read-only",
            "mounts the host's root / read-write; Bottlerocket's root filesystem is read-only (dm-verity)",
            "mount only the writable directory the workload needs, under /var, /opt, /local or /mnt",
        )
    if top in READ_ONLY_TOP:
        where = (
            "/usr (including /usr/local) is" if top == "usr" else f"/{top} is part of the read-only image and"
        )
        return (
            Severity.BLOCKER,
            "hostpath-read-only",
            f"mounts hostPath {clean} read-write; on Bottlerocket {where} read-only (dm-verity)",
            f"write under /var, /opt, /local or /mnt instead (e.g. {_writable_twin(clean)}), "
            "or ship the files in the container image",
        )
    if clean == "/etc/cni" or clean.startswith("/etc/cni/"):
        return None  # Bottlerocket keeps /etc/cni writable and persistent for CNI plugins
    if top == "etc":
        return (
            Severity.WARNING,
            "hostpath-etc-tmpfs",
            f"mounts hostPath {clean} read-write; Bottlerocket's /etc is a tmpfs regenerated from settings "
            "at every boot, so what it writes there does not last",
            "express the change as a Bottlerocket setting (TOML user data or the API, e.g. "
            "settings.kernel.sysctl) "
            "instead of editing /etc",
        )
    if top in WRITABLE_TOP:
        return None
    return (
        Severity.BLOCKER,
        "hostpath-new-top-level",
        f"mounts hostPath {clean} read-write; /{top} does not exist on Bottlerocket and no new top-level "
        "directory can be created on its read-only root",
        f"use a directory under /var, /opt, /local or /mnt (e.g. /local/{top})",
    )


def _affinity_problems(spec: PodSpecFacts, nodepool_label_ok: frozenset[str]) -> list[str]:
    found: list[str] = []
    pairs: list[tuple[str, tuple[str, ...]]] = [(k, (v,)) for k, v in spec.node_selector.items()]
    pairs += [(t.key, t.values) for term in spec.node_affinity for t in term if t.operator == "In"]
    for key, values in pairs:
        tied = (
            key in AL2_ONLY_LABELS
            or (key == "karpenter.sh/nodepool" and not set(values) & nodepool_label_ok)
            or any(_AMI_VALUE.match(v) or _AL2_VALUE.search(v) for v in values)
        )
        if tied:
            found.append(f"{key}={','.join(values)}")
    return found


def scan(
    workload: WorkloadFacts,
    *,
    data_volume_gib: int = 20,
    nodepools_kept: frozenset[str] = frozenset(),
) -> list[Reason]:
    """Every reason `workload` would fail or misbehave on Bottlerocket. `nodepools_kept` are the
    NodePool names the Bottlerocket nodes will carry (a drift wave keeps its pools' names)."""
    spec = workload.spec
    obj = workload.text
    reasons: list[Reason] = []
    for mount in spec.host_paths:
        clean = _norm(mount.path)
        if clean in DOCKER_SOCKETS or clean.endswith("/docker.sock"):
            reasons.append(
                Reason(
                    Severity.BLOCKER,
                    "docker-socket",
                    obj,
                    f"container {mount.container} mounts {clean}; Bottlerocket runs containerd only, there "
                    "is "
                    "no Docker daemon",
                    "talk to containerd (/run/containerd/containerd.sock) or the CRI API, or drop the mount",
                )
            )
            continue
        if clean == "/lib/modules" or clean.startswith("/lib/modules/"):
            reasons.append(
                Reason(
                    Severity.WARNING,
                    "kernel-modules",
                    obj,
                    f"container {mount.container} mounts {clean}; Bottlerocket loads only the kernel modules "
                    "its image ships (kernel lockdown)",
                    "check the module ships with Bottlerocket and load it with settings.kernel.modules",
                )
            )
        if mount.read_only:
            continue
        problem = hostpath_problem(clean)
        if problem is not None:
            severity, check, reason, fix = problem
            reasons.append(Reason(severity, check, obj, f"container {mount.container} {reason}", fix))
    privileged = set(spec.privileged)
    for container, line in spec.commands:
        host_level = container in privileged or spec.host_pid
        entry = _HOST_ENTRY.search(line) if host_level else None
        manager = _PACKAGE_MANAGER.search(line) if host_level else None
        if entry is not None:
            reasons.append(
                Reason(
                    Severity.BLOCKER,
                    "host-entry",
                    obj,
                    f"privileged container {container} enters the host ({entry[0]}: {line[:80]}); "
                    "Bottlerocket's host has no shell or userland to enter",
                    "use the Bottlerocket API (apiclient) or a setting, or run the tool in the admin "
                    "container",
                )
            )
        if manager is not None:
            reasons.append(
                Reason(
                    Severity.BLOCKER,
                    "package-manager",
                    obj,
                    f"privileged container {container} runs {manager[0]} "
                    f"({line[:80]}); Bottlerocket has no package manager and its /usr is read-only",
                    "build the tools into the container image, or use a Bottlerocket setting or bootstrap "
                    "container",
                )
            )
        if host_level and _SSH.search(line):
            reasons.append(
                Reason(
                    Severity.BLOCKER,
                    "ssh",
                    obj,
                    f"privileged container {container} uses SSH on the host ({line[:80]}); Bottlerocket runs "
                    "no SSH daemon outside the admin container",
                    "reach nodes through SSM and the control container, or enable the admin container on "
                    "purpose",
                )
            )
        if _MODULES.search(line):
            reasons.append(
                Reason(
                    Severity.WARNING,
                    "kernel-modules",
                    obj,
                    f"container {container} loads kernel modules ({line[:80]}); Bottlerocket loads only "
                    "signed modules its image ships (kernel lockdown)",
                    "check the module ships with Bottlerocket and load it with settings.kernel.modules",
                )
            )
    if "SYS_MODULE" in spec.added_capabilities:
        reasons.append(
            Reason(
                Severity.WARNING,
                "kernel-modules",
                obj,
                "adds capability SYS_MODULE; Bottlerocket loads only signed modules its image ships",
                "check the module ships with Bottlerocket and load it with settings.kernel.modules",
            )
        )
    tied = _affinity_problems(spec, nodepools_kept)
    if tied:
        reasons.append(
            Reason(
                Severity.BLOCKER,
                "al2-node-selector",
                obj,
                f"selects nodes by {', '.join(tied)}, which only the AL2 nodes carry; on Bottlerocket its "
                "pods "
                "stay Pending",
                "select by a label the new NodePool carries (the node group's own labels, e.g. "
                "workload-class), "
                "or by kubernetes.io/os",
            )
        )
    if spec.ephemeral_bytes > data_volume_gib * GIB:
        reasons.append(
            Reason(
                Severity.BLOCKER,
                "ephemeral-storage",
                obj,
                f"asks for {spec.ephemeral_bytes / GIB:.1f} GiB of ephemeral storage per pod; Bottlerocket "
                "keeps pod "
                f"data on its data volume (/dev/xvdb), {data_volume_gib} GiB in the plan",
                "raise target.ec2nodeclass.data_volume_gib, or move the data to a PersistentVolume",
            )
        )
    return reasons


BASH_SHEBANG = re.compile(r"^#!\s*/bin/(ba)?sh|^Content-Type:\s*text/x-shellscript", re.MULTILINE)


def is_shell_user_data(text: str) -> bool:
    """A shell script (or MIME part holding one): AL2's bootstrap, meaningless to Bottlerocket."""
    return bool(BASH_SHEBANG.search(text))
