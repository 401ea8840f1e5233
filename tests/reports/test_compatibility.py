"""The Bottlerocket compatibility scan: each rule from Bottlerocket's documented host, on one pod spec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from objects import container, pod

from bot.reports.compatibility import hostpath_problem, is_shell_user_data, scan
from bot.reports.facts import PodSpecFacts, WorkloadFacts, pod_spec_facts
from bot.reports.reasons import Severity


def workload(spec: PodSpecFacts, kind: str = "Deployment", name: str = "web") -> WorkloadFacts:
    return WorkloadFacts(kind, "shop", name, 2, spec)


def host_mount(path: str, *, read_only: bool = False, name: str = "app") -> PodSpecFacts:
    return pod_spec_facts(
        pod(
            "p",
            "n1",
            containers=[
                container(name, volumeMounts=[{"name": "h", "mountPath": "/h", "readOnly": read_only}])
            ],
            volumes=[{"name": "h", "hostPath": {"path": path}}],
        )
    )


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/", "hostpath-read-only"),
        ("/usr", "hostpath-read-only"),
        ("/usr/local/bin", "hostpath-read-only"),
        ("/usr/share/resizer-cache", "hostpath-read-only"),
        ("/lib/firmware", "hostpath-read-only"),
        ("/data", "hostpath-new-top-level"),
        ("/srv2/cache", "hostpath-new-top-level"),
    ],
)
def test_a_writable_hostpath_on_the_read_only_root_blocks_the_wave_and_names_the_path(
    path: str, check: str
) -> None:
    (reason,) = scan(workload(host_mount(path)))
    assert reason.severity is Severity.BLOCKER
    assert reason.check == check
    assert reason.object == "Deployment shop/web"
    assert path in reason.reason and "read-only" in reason.reason
    assert "/var" in reason.fix or "/local" in reason.fix


@pytest.mark.parametrize(
    "path", ["/var/lib/app", "/opt/cni/bin", "/local/data", "/mnt/scratch", "/etc/cni/net.d"]
)
def test_writable_directories_of_bottlerocket_are_fine(path: str) -> None:
    assert scan(workload(host_mount(path))) == []


def test_the_same_paths_mounted_read_only_are_fine() -> None:
    assert scan(workload(host_mount("/usr/local/bin", read_only=True))) == []


def test_a_write_to_etc_is_a_warning_that_it_does_not_survive_a_reboot() -> None:
    (reason,) = scan(workload(host_mount("/etc/sysctl.d")))
    assert reason.severity is Severity.WARNING
    assert "tmpfs" in reason.reason and "setting" in reason.fix


def test_a_docker_socket_mount_blocks_because_bottlerocket_runs_containerd_only() -> None:
    (reason,) = scan(workload(host_mount("/var/run/docker.sock")))
    assert reason.check == "docker-socket" and reason.severity is Severity.BLOCKER
    assert "containerd" in reason.reason


@pytest.mark.parametrize(
    ("command", "check"),
    [
        (["/bin/sh", "-c", "yum install -y ethtool"], "package-manager"),
        (["nsenter", "-t", "1", "-m", "--", "sysctl", "-w", "x=1"], "host-entry"),
        (["chroot", "/host", "bash"], "host-entry"),
        (["/bin/sh", "-c", "ssh node-debug@localhost"], "ssh"),
    ],
)
def test_a_privileged_container_that_needs_the_host_userland_blocks(command: list[str], check: str) -> None:
    spec = pod_spec_facts(
        pod("p", "n1", containers=[container("tuner", command=command, securityContext={"privileged": True})])
    )
    reasons = scan(workload(spec, "DaemonSet", "node-tuner"))
    assert [r.check for r in reasons] == [check]
    assert reasons[0].object == "DaemonSet shop/node-tuner" and "tuner" in reasons[0].reason


def test_an_unprivileged_container_installing_packages_into_itself_is_fine() -> None:
    spec = pod_spec_facts(pod("p", "n1", containers=[container(command=["yum", "install", "-y", "jq"])]))
    assert scan(workload(spec)) == []


def test_kernel_module_needs_are_a_warning() -> None:
    spec = pod_spec_facts(pod("p", "n1", containers=[container(command=["modprobe", "br_netfilter"])]))
    (reason,) = scan(workload(spec))
    assert reason.check == "kernel-modules" and reason.severity is Severity.WARNING


@pytest.mark.parametrize(
    "selector",
    [
        {"eks.amazonaws.com/nodegroup": "ng-web"},
        {"eks.amazonaws.com/nodegroup-image": "ami-0c4b2d3e5f6a7b8c9"},
        {"node.example.com/os": "amazon-linux-2"},
    ],
)
def test_a_node_selector_only_al2_nodes_satisfy_blocks(selector: dict[str, str]) -> None:
    spec = pod_spec_facts(pod("p", "n1", nodeSelector=selector))
    (reason,) = scan(workload(spec))
    assert reason.check == "al2-node-selector" and reason.severity is Severity.BLOCKER
    assert next(iter(selector)) in reason.reason


def test_a_node_group_label_the_new_nodepool_carries_is_fine() -> None:
    spec = pod_spec_facts(pod("p", "n1", nodeSelector={"workload-class": "web"}))
    assert scan(workload(spec)) == []


def test_required_node_affinity_on_the_node_group_blocks_too() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "eks.amazonaws.com/nodegroup", "operator": "In", "values": ["a"]}
                        ]
                    }
                ]
            }
        }
    }
    (reason,) = scan(workload(pod_spec_facts(pod("p", "n1", affinity=affinity))))
    assert reason.check == "al2-node-selector"


def test_ephemeral_storage_beyond_the_data_volume_blocks() -> None:
    big = container(resources={"requests": {"cpu": "1", "ephemeral-storage": "30Gi"}})
    spec = pod_spec_facts(pod("p", "n1", containers=[big]))
    (reason,) = scan(workload(spec), data_volume_gib=20)
    assert reason.check == "ephemeral-storage" and "20 GiB" in reason.reason
    assert scan(workload(spec), data_volume_gib=40) == []


def test_shell_user_data_is_recognised_and_toml_is_not() -> None:
    assert is_shell_user_data("#!/bin/bash\nset -ex\n")
    assert is_shell_user_data('Content-Type: text/x-shellscript; charset="us-ascii"\n\n#!/bin/bash\n')
    assert not is_shell_user_data('[settings.kubernetes]\ncluster-name = "x"\n')


@given(st.lists(st.from_regex(r"[a-z0-9_-][a-z0-9._-]{0,7}", fullmatch=True), min_size=1, max_size=4))
def test_every_absolute_path_gets_a_verdict_and_only_writable_tops_are_clean(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    problem = hostpath_problem(path)
    top = path.split("/")[1]
    if top in {"var", "opt", "local", "mnt", "run", "tmp", "dev", "proc", "sys"} or path.startswith(
        "/etc/cni"
    ):
        assert problem is None
    else:
        assert problem is not None and problem[0] in (Severity.BLOCKER, Severity.WARNING)
