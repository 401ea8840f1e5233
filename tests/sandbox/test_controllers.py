"""Behaviour behind the sandbox API: scheduler, workload controllers, kubelet, graceful deletion.

Over the wire with the official client and the real kubectl; time runs 100x faster (ScaledClock) and
latencies are read back in emulated seconds from the ground truth.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kubernetes import client, config
from test_controllers_support import deployment, pods_of, ready, ready_node, running, wait_for

from sandbox.kube.jsontypes import JSON


def _nodes() -> list[JSON]:
    return [
        ready_node(
            "ip-10-0-1-10.us-west-2.compute.internal", "10.0.1.10", "us-west-2a", "i-0a1", group="al2"
        ),
        ready_node(
            "ip-10-0-2-10.us-west-2.compute.internal", "10.0.2.10", "us-west-2b", "i-0a2", group="al2"
        ),
        ready_node(
            "ip-10-0-3-10.us-west-2.compute.internal",
            "10.0.3.10",
            "us-west-2c",
            "i-0b1",
            bottlerocket=True,
            group="br",
        ),
    ]


def test_a_deployment_becomes_ready_with_realistic_latencies_bottlerocket_faster_and_caching_faster() -> None:
    with running(_nodes(), scale=40) as (sb, ctl):
        api = config.new_client_from_config(config_file=str(sb.kubeconfig))
        apps = client.AppsV1Api(api)
        group = "eks.amazonaws.com/nodegroup"
        apps.create_namespaced_deployment("default", deployment("web-al2", 2, node_selector={group: "al2"}))
        apps.create_namespaced_deployment("default", deployment("web-br", 2, node_selector={group: "br"}))
        wait_for(
            "all four pods Ready",
            lambda: sum(ready(p) for p in pods_of(sb, "web-al2") + pods_of(sb, "web-br")) == 4,
        )
        truth = ctl.ground_truth()["pods"]

        def start_latency(app: str) -> list[float]:
            return sorted(
                truth[f"default/{p['metadata']['name']}"]["ready"]
                - truth[f"default/{p['metadata']['name']}"]["scheduled"]
                for p in pods_of(sb, app)
            )

        al2, br = start_latency("web-al2"), start_latency("web-br")
        # AL2: a 40 s pull on a fresh node + 2 s start; Bottlerocket's cached pull: 4 s + 2 s.
        assert 38 <= al2[-1] <= 50, al2
        assert 5 <= br[-1] <= 12, br
        assert al2[-1] - br[-1] >= 30
        # A second pod of the same image on the same Bottlerocket node... both web-br pods share it.
        assert br[0] <= br[-1]
        pods = client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=web-br").items
        pod = pods[0]
        assert pod.status.phase == "Running" and pod.status.pod_ip and pod.status.start_time
        assert pod.status.container_statuses[0].ready and pod.status.container_statuses[0].restart_count == 0
        assert (
            pod.metadata.owner_references[0].kind == "ReplicaSet"
            and pod.metadata.owner_references[0].controller
        )
        assert "pod-template-hash" in pod.metadata.labels
        reasons = {
            e.reason
            for e in client.CoreV1Api(api)
            .list_namespaced_event("default", field_selector=f"involvedObject.name={pod.metadata.name}")
            .items
        }
        assert {"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= reasons
        dep = wait_for(
            "deployment status",
            lambda: (
                (d := apps.read_namespaced_deployment("web-br", "default")).status.ready_replicas == 2 and d
            ),
        )
        assert dep.status.available_replicas == 2
        api.close()


def test_a_second_pod_of_an_image_on_the_same_node_starts_from_the_cache() -> None:
    node = _nodes()[0]
    with running([node]) as (sb, ctl):
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps.create_namespaced_deployment("default", deployment("first", 1))
        wait_for("first Ready", lambda: any(ready(p) for p in pods_of(sb, "first")))
        apps.create_namespaced_deployment("default", deployment("second", 1))
        wait_for("second Ready", lambda: any(ready(p) for p in pods_of(sb, "second")))
        truth = ctl.ground_truth()["pods"]
        (second,) = pods_of(sb, "second")
        record = truth[f"default/{second['metadata']['name']}"]
        assert record["ready"] - record["scheduled"] <= 5  # image already present: start only


def test_unschedulable_pods_get_podscheduled_false_and_a_failedscheduling_event() -> None:
    with running(_nodes()) as (sb, _ctl):
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps = client.AppsV1Api(core.api_client)
        apps.create_namespaced_deployment("default", deployment("huge", 1, cpu="64"))
        pod = wait_for(
            "Unschedulable",
            lambda: next(
                (
                    p
                    for p in core.list_namespaced_pod("default", label_selector="app=huge").items
                    if p.status.conditions and p.status.conditions[0].reason == "Unschedulable"
                ),
                None,
            ),
        )
        assert "Insufficient cpu" in pod.status.conditions[0].message
        events = core.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={pod.metadata.name}"
        ).items
        assert any(e.reason == "FailedScheduling" and e.type == "Warning" for e in events)


def test_deleting_a_pod_keeps_it_terminating_for_its_grace_period_then_the_replicaset_replaces_it() -> None:
    with running(_nodes()) as (sb, ctl):
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        client.AppsV1Api(core.api_client).create_namespaced_deployment("default", deployment("svc", 2))
        wait_for("2 Ready", lambda: sum(ready(p) for p in pods_of(sb, "svc")) == 2)
        victim = pods_of(sb, "svc")[0]["metadata"]["name"]
        deleted = core.delete_namespaced_pod(victim, "default")
        assert deleted.metadata.deletion_timestamp is not None  # Terminating, not gone
        wait_for("victim gone", lambda: all(p["metadata"]["name"] != victim for p in pods_of(sb, "svc")))
        wait_for("replacement Ready", lambda: sum(ready(p) for p in pods_of(sb, "svc")) == 2)
        record = next(r for k, r in ctl.ground_truth()["pods"].items() if k == f"default/{victim}")
        assert 4 <= record["deleted"] - record["deleting"] <= 8  # min(30 s grace, 5 s cap)
        assert record["replacement"].startswith("default/svc-")


def test_statefulset_pods_are_created_in_order_and_daemonsets_cover_every_node() -> None:
    sts: JSON = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
            },
        },
    }
    ds: JSON = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "agent:1"}]},
            },
        },
    }
    with running([*_nodes(), sts, ds]) as (sb, ctl):
        wait_for("db-0..2 Ready", lambda: sum(ready(p) for p in pods_of(sb, "db")) == 3, timeout=30)
        truth = ctl.ground_truth()["pods"]
        created = [truth[f"default/db-{i}"]["created"] for i in range(3)]
        readies = [truth[f"default/db-{i}"]["ready"] for i in range(3)]
        assert created[1] >= readies[0] and created[2] >= readies[1]  # OrderedReady
        agents = wait_for("3 agents", lambda: len(p := pods_of(sb, "agent", "kube-system")) == 3 and p)
        assert sorted(p["spec"]["nodeName"] for p in agents) == sorted(
            n["metadata"]["name"] for n in _nodes()
        )
        assert all(p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet" for p in agents)


@pytest.mark.kubectl
def test_kubectl_drain_of_an_al2_node_recreates_its_replicaset_pods_ready_elsewhere() -> None:
    binary = shutil.which("kubectl")
    assert binary is not None, "kubectl must be on PATH"
    with running(_nodes()) as (sb, ctl):
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps.create_namespaced_deployment("default", deployment("shop", 4))
        wait_for("4 Ready", lambda: sum(ready(p) for p in pods_of(sb, "shop")) == 4)
        target = "ip-10-0-1-10.us-west-2.compute.internal"
        on_target = {p["metadata"]["name"] for p in pods_of(sb, "shop") if p["spec"]["nodeName"] == target}
        assert on_target
        result = subprocess.run(
            [
                binary,
                "--kubeconfig",
                str(sb.kubeconfig),
                "drain",
                target,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--timeout=60s",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env={"HOME": str(sb.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr
        assert "drained" in result.stdout
        pods = wait_for(
            "4 Ready elsewhere",
            lambda: (
                (ps := pods_of(sb, "shop"))
                and sum(ready(p) for p in ps) == 4
                and all(p["spec"].get("nodeName") != target for p in ps)
                and ps
            ),
        )
        assert not on_target & {p["metadata"]["name"] for p in pods}
        truth = ctl.ground_truth()
        evicted = [e for e in truth["evictions"] if e["pod"] in on_target]
        assert evicted and all(e["code"] == 201 for e in evicted)
        assert truth["pdbViolations"] == []


def test_pods_matching_the_fault_crash_only_on_bottlerocket_with_a_read_only_filesystem_event() -> None:
    with running(_nodes()) as (sb, ctl):
        ctl.fault_crash_on_bottlerocket(
            namespace="default", selector="app in (writer-br,writer-al2)", path="/usr/local/bin"
        )
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps = client.AppsV1Api(core.api_client)
        group = "eks.amazonaws.com/nodegroup"
        apps.create_namespaced_deployment("default", deployment("writer-br", 1, node_selector={group: "br"}))
        apps.create_namespaced_deployment(
            "default", deployment("writer-al2", 1, node_selector={group: "al2"})
        )

        def crash_looping() -> JSON | None:
            pods = pods_of(sb, "writer-br")
            statuses = pods[0].get("status", {}).get("containerStatuses") or [{}] if pods else [{}]
            return pods[0] if statuses[0].get("restartCount", 0) >= 2 else None

        pod = wait_for("restartCount climbing on Bottlerocket", crash_looping)
        status = pod["status"]["containerStatuses"][0]
        assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff" and not status["ready"]
        events = core.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={pod['metadata']['name']}"
        ).items
        mounts = [e for e in events if e.reason == "FailedMount"]
        assert mounts and "read-only file system" in mounts[0].message and mounts[0].type == "Warning"
        wait_for("the AL2 twin runs", lambda: any(ready(p) for p in pods_of(sb, "writer-al2")))
        binary = shutil.which("kubectl")
        assert binary is not None
        out = subprocess.run(
            [binary, "--kubeconfig", str(sb.kubeconfig), "get", "pods", "-l", "app=writer-br"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"HOME": str(sb.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
        ).stdout
        assert "CrashLoopBackOff" in out


def _writing_to(name: str, host_path: str, group: str, *, read_only: bool = False) -> JSON:
    d = deployment(name, 1, node_selector={"eks.amazonaws.com/nodegroup": group})
    spec = d["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "host", "hostPath": {"path": host_path, "type": "DirectoryOrCreate"}}]
    mount: JSON = {"name": "host", "mountPath": "/host"}
    if read_only:
        mount["readOnly"] = True
    spec["containers"][0]["volumeMounts"] = [mount]
    return d


def test_a_writable_host_path_on_bottlerocket_s_read_only_root_fails_and_runs_on_al2() -> None:
    refused = {"usr-local": "/usr/local/bin", "usr-share": "/usr/share/cache", "root": "/srv/data"}
    accepted = {
        "var": "/var/lib/agent",
        "opt": "/opt/agent",
        "local": "/local/cache",
        "mnt": "/mnt/scratch",
        "etc": "/etc/agent",
    }
    objects = [
        *_nodes(),
        *(_writing_to(f"br-{k}", v, "br") for k, v in (refused | accepted).items()),
        _writing_to("br-usr-read-only", "/usr/share/zoneinfo", "br", read_only=True),
        *(_writing_to(f"al2-{k}", v, "al2") for k, v in refused.items()),
    ]
    with running(objects) as (sb, _):
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        runs = [f"br-{k}" for k in accepted] + ["br-usr-read-only"] + [f"al2-{k}" for k in refused]
        wait_for(
            "pods with writable or read-only-mounted host paths Ready",
            lambda: all(any(ready(p) for p in pods_of(sb, app)) for app in runs),
        )

        def crash_looping(app: str) -> JSON | None:
            pods = pods_of(sb, app)
            statuses = (pods[0].get("status") or {}).get("containerStatuses") or [{}] if pods else [{}]
            waiting = statuses[0].get("state", {}).get("waiting", {})
            return pods[0] if waiting.get("reason") == "CrashLoopBackOff" else None

        for key, path in refused.items():
            pod = wait_for(f"br-{key} in CrashLoopBackOff", lambda key=key: crash_looping(f"br-{key}"))
            assert not ready(pod)
            events = core.list_namespaced_event(
                "default", field_selector=f"involvedObject.name={pod['metadata']['name']},reason=FailedMount"
            ).items
            assert [(e.type, e.message) for e in events] == [
                (
                    "Warning",
                    f'MountVolume.SetUp failed for volume "host" : mkdir {path}: read-only file system',
                )
            ]


def test_a_pdb_with_max_unavailable_zero_never_allows_an_eviction_and_ground_truth_records_the_429() -> None:
    from test_controllers_support import pdb

    with running([*_nodes(), deployment("pay", 2), pdb("pay", "pay", maxUnavailable=0)]) as (sb, ctl):
        wait_for("2 Ready", lambda: sum(ready(p) for p in pods_of(sb, "pay")) == 2)
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        name = pods_of(sb, "pay")[0]["metadata"]["name"]
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))
        with pytest.raises(client.ApiException) as refused:
            core.create_namespaced_pod_eviction(name, "default", body)
        assert refused.value.status == 429
        truth = ctl.ground_truth()
        assert [(e["pod"], e["code"]) for e in truth["evictions"]] == [(name, 429)]
        assert truth["pdbViolations"] == []


def test_deleting_a_pdb_guarded_pod_outside_the_eviction_api_is_a_recorded_violation() -> None:
    from test_controllers_support import pdb

    with running([*_nodes(), deployment("pay", 2), pdb("pay", "pay", minAvailable=2)]) as (sb, ctl):
        wait_for("2 Ready", lambda: sum(ready(p) for p in pods_of(sb, "pay")) == 2)
        wait_for(
            "PDB status",
            lambda: (
                (sb.api.store.get(sb.api.rt("policy", "v1", "poddisruptionbudgets"), "default", "pay") or {})
                .get("status", {})
                .get("desiredHealthy")
                == 2
            ),
        )
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        core.delete_namespaced_pod(pods_of(sb, "pay")[0]["metadata"]["name"], "default")
        (violation,) = wait_for("a violation", lambda: ctl.ground_truth()["pdbViolations"])
        assert (
            violation["pdb"] == "default/pay"
            and violation["healthy"] == 1
            and violation["desiredHealthy"] == 2
        )
