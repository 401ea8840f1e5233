"""The real kubectl accepts the sandbox: the commands an SRE runs during a migration, without complaint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kube_support import Kubectl

from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import NODES

pytestmark = pytest.mark.kubectl

NODE = NODES[0][0]


def test_get_nodes_wide_prints_the_server_side_table(kubectl: Kubectl) -> None:
    result = kubectl("get", "nodes", "-o", "wide")
    assert result.stderr == ""
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
        "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME",
    ]  # fmt: skip
    assert len(rows) == 3
    first = rows[0]
    assert first.startswith(NODE)
    for text in ("Ready", "12d", "10.0.1.23", "Amazon Linux 2", "amzn2.x86_64", "containerd://1.7.27"):
        assert text in first


def test_get_pods_in_all_namespaces(kubectl: Kubectl) -> None:
    result = kubectl("get", "pods", "-A")
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(lines) == 7
    assert all("1/1" in line and "Running" in line for line in lines[1:])


def test_get_karpenter_resources_with_their_printer_columns(kubectl: Kubectl) -> None:
    result = kubectl("get", "nodepools,ec2nodeclasses,nodeclaims")
    assert result.stderr == ""
    out = result.stdout
    assert "nodepool.karpenter.sh/default" in out
    assert "ec2nodeclass.karpenter.k8s.aws/al2" in out
    assert "nodeclaim.karpenter.sh/default-8xk2q" in out
    for column in ("NODECLASS", "CAPACITY", "on-demand"):
        assert column in out


def test_describe_node_lists_its_pods_lease_and_events(kubectl: Kubectl) -> None:
    result = kubectl("describe", "node", NODE)
    assert result.stderr == ""
    assert "Non-terminated Pods:          (2 in total)" in result.stdout
    assert "web-7f9c6d8b5-x2k4p" in result.stdout
    assert f"HolderIdentity:  {NODE}" in result.stdout
    assert "NodeReady" in result.stdout


def test_cordon_and_uncordon(kubectl: Kubectl, cluster: SandboxServer) -> None:
    nodes = cluster.api.rt("", "v1", "nodes")
    cordon = kubectl("cordon", NODE)
    assert (cordon.stdout, cordon.stderr) == (f"node/{NODE} cordoned\n", "")
    assert cluster.api.store.must_get(nodes, "", NODE)["spec"]["unschedulable"] is True
    assert "Ready,SchedulingDisabled" in kubectl("get", "node", NODE).stdout
    uncordon = kubectl("uncordon", NODE)
    assert (uncordon.stdout, uncordon.stderr) == (f"node/{NODE} uncordoned\n", "")
    assert not cluster.api.store.must_get(nodes, "", NODE)["spec"].get("unschedulable")


def test_patch_nodepool_with_a_merge_patch(kubectl: Kubectl, cluster: SandboxServer) -> None:
    patch = {"spec": {"template": {"spec": {"nodeClassRef": {"name": "bottlerocket"}}}}}
    result = kubectl("patch", "nodepool", "default", "--type", "merge", "-p", json.dumps(patch))
    assert (result.stdout, result.stderr) == ("nodepool.karpenter.sh/default patched\n", "")
    pool = cluster.api.store.must_get(cluster.api.rt("karpenter.sh", "v1", "nodepools"), "", "default")
    assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "bottlerocket"
    assert pool["metadata"]["generation"] == 2


def test_patch_nodepool_refuses_a_strategic_merge_patch_like_a_real_crd(kubectl: Kubectl) -> None:
    result = kubectl("patch", "nodepool", "default", "--type", "strategic", "-p", '{"spec":{}}', check=False)
    assert result.returncode == 1
    assert "UnsupportedMediaType" in result.stderr or "unknown format" in result.stderr


def test_auth_can_i_through_impersonation(kubectl: Kubectl, cluster: SandboxServer) -> None:
    yes = kubectl("auth", "can-i", "create", "pods/eviction", "-n", "shop")
    assert (yes.stdout, yes.stderr) == ("yes\n", "")
    no = kubectl("auth", "can-i", "create", "pods/eviction", "-n", "shop", "--as", "bob", check=False)
    assert (no.returncode, no.stdout, no.stderr) == (1, "no\n", "")
    _grant_eviction(cluster, "bob")
    # kubectl reads "pods/eviction" as TYPE/NAME (the pod named "eviction"), as on any cluster: the
    # subresource is asked with --subresource. Both requests reach the authorizer as kubectl sent them.
    granted = kubectl(
        "auth", "can-i", "create", "pods", "--subresource=eviction", "-n", "shop", "--as", "bob"
    )
    assert (granted.stdout, granted.stderr) == ("yes\n", "")
    as_name = kubectl("auth", "can-i", "create", "pods/eviction", "-n", "shop", "--as", "bob", check=False)
    assert as_name.stdout == "no\n"
    other_ns = kubectl(
        "auth",
        "can-i",
        "create",
        "pods",
        "--subresource=eviction",
        "-n",
        "default",
        "--as",
        "bob",
        check=False,
    )
    assert other_ns.stdout == "no\n"
    reviews = [e for e in cluster.api.log.since(0)[0] if e["resource"] == "selfsubjectaccessreviews"]
    assert reviews[-1]["user"] == "bob"
    assert reviews[-1]["impersonatedBy"] == "kubernetes-admin"


def _grant_eviction(cluster: SandboxServer, user: str) -> None:
    cluster.api.load(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "evictor", "namespace": "shop"},
                "rules": [{"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "evictor", "namespace": "shop"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "evictor"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            },
        ]
    )


def test_drain_evicts_exactly_the_pods_kubectl_chooses(kubectl: Kubectl, cluster: SandboxServer) -> None:
    result = kubectl("drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=10s")
    assert result.stdout.splitlines() == [
        f"node/{NODE} cordoned",
        "evicting pod shop/web-7f9c6d8b5-x2k4p",
        "pod/web-7f9c6d8b5-x2k4p evicted",
        f"node/{NODE} drained",
    ]
    assert result.stderr == "Warning: ignoring DaemonSet-managed Pods: kube-system/aws-node-x2k4p\n"
    evictions = [e for e in cluster.api.log.since(0)[0] if e["subresource"] == "eviction"]
    assert [(e["namespace"], e["name"], e["code"]) for e in evictions] == [
        ("shop", "web-7f9c6d8b5-x2k4p", 201)
    ]
    left = kubectl("get", "pods", "-A", "--field-selector", f"spec.nodeName={NODE}", "-o", "name").stdout
    assert left == "pod/aws-node-x2k4p\n"


def test_drain_blocked_by_a_pdb_retries_and_times_out(kubectl: Kubectl, cluster: SandboxServer) -> None:
    pdbs = cluster.api.rt("policy", "v1", "poddisruptionbudgets")
    pdb = cluster.api.store.must_get(pdbs, "shop", "web")
    cluster.api.store.update(pdbs, {**pdb, "spec": {**pdb["spec"], "maxUnavailable": 0}})
    result = kubectl(
        "drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=3s", check=False
    )
    assert result.returncode == 1
    assert (
        'error when evicting pods/"web-7f9c6d8b5-x2k4p" -n "shop" (will retry after 5s): '
        "Cannot evict pod as it would violate the pod's disruption budget." in result.stderr
    )
    assert f'error: unable to drain node "{NODE}" due to error: ' in result.stderr
    assert "global timeout reached: 3s" in result.stderr
    pods = cluster.api.rt("", "v1", "pods")
    assert cluster.api.store.get(pods, "shop", "web-7f9c6d8b5-x2k4p") is not None
    refusals = [e for e in cluster.api.log.since(0)[0] if e["subresource"] == "eviction"]
    assert refusals
    assert all(e["code"] == 429 for e in refusals)


def test_wide_output_adds_the_crd_priority_columns(kubectl: Kubectl) -> None:
    narrow = kubectl("get", "ec2nodeclasses")
    wide = kubectl("get", "ec2nodeclasses", "-o", "wide")
    assert narrow.stdout.splitlines()[0].split() == ["NAME", "READY", "AGE"]
    assert wide.stdout.splitlines()[0].split() == ["NAME", "READY", "AGE", "ROLE"]
    assert "KarpenterNodeRole-sandbox" in wide.stdout
    assert wide.stderr == ""


def test_get_events_through_both_event_apis(kubectl: Kubectl) -> None:
    core = kubectl("get", "events", "-A")
    assert "NodeReady" in core.stdout
    assert core.stderr == ""
    v1 = kubectl("get", "events.v1.events.k8s.io", "-A", "-o", "name")
    assert v1.stdout.strip().startswith("event.events.k8s.io/ip-10-0-1-23")


def test_typed_generators_and_label_taint_delete(kubectl: Kubectl, cluster: SandboxServer) -> None:
    # `create namespace` sends a protobuf body, `label`/`taint` patches, `delete` a DeleteOptions.
    for args, out in (
        (("create", "namespace", "team-a"), "namespace/team-a created\n"),
        (("label", "node", NODE, "migratebot/wave=1"), f"node/{NODE} labeled\n"),
        (("taint", "node", NODE, "dedicated=x:NoSchedule"), f"node/{NODE} tainted\n"),
        (("delete", "pod", "-n", "shop", "web-7f9c6d8b5-m8q7z"), 'pod "web-7f9c6d8b5-m8q7z" deleted\n'),
    ):
        result = kubectl(*args)
        assert (result.stdout, result.stderr) == (out, "")
    node = cluster.api.store.must_get(cluster.api.rt("", "v1", "nodes"), "", NODE)
    assert node["metadata"]["labels"]["migratebot/wave"] == "1"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]


NODEPOOL_YAML = """\
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: bottlerocket
spec:
  template:
    spec:
      nodeClassRef:
        group: karpenter.k8s.aws
        kind: EC2NodeClass
        name: {node_class}
      requirements:
        - key: kubernetes.io/arch
          operator: In
          values: ["amd64"]
"""


def test_apply_a_nodepool_from_a_file_and_explain_it(
    kubectl: Kubectl, cluster: SandboxServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "nodepool.yaml"
    manifest.write_text(NODEPOOL_YAML.format(node_class="al2"))
    created = kubectl("apply", "-f", str(manifest))
    assert (created.stdout, created.stderr) == ("nodepool.karpenter.sh/bottlerocket created\n", "")
    manifest.write_text(NODEPOOL_YAML.format(node_class="bottlerocket"))
    changed = kubectl("apply", "-f", str(manifest))
    assert (changed.stdout, changed.stderr) == ("nodepool.karpenter.sh/bottlerocket configured\n", "")
    pool = cluster.api.store.must_get(cluster.api.rt("karpenter.sh", "v1", "nodepools"), "", "bottlerocket")
    assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "bottlerocket"
    explained = kubectl("explain", "nodepool.spec.disruption.budgets")
    assert "FIELD: budgets <[]Object>" in explained.stdout


def test_apply_an_invalid_nodepool_prints_the_crd_message(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "nodepool.yaml"
    manifest.write_text(NODEPOOL_YAML.format(node_class='""'))
    result = kubectl("apply", "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert (
        'The NodePool "bottlerocket" is invalid: spec.template.spec.nodeClassRef.name: '
        'Invalid value: "string": name may not be empty'
    ) in result.stderr


def test_explain_describes_built_in_kinds_and_karpenter_s(kubectl: Kubectl) -> None:
    pod = kubectl("explain", "pod").stdout
    assert pod.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "Pod is a collection of containers that can run on a host." in pod
    assert "spec\t<PodSpec>" in pod
    tolerations = kubectl("explain", "pods.spec.tolerations.tolerationSeconds").stdout
    assert "FIELD: tolerationSeconds <integer>" in tolerations
    assert "GROUP:      apps" in kubectl("explain", "deployment.spec.strategy").stdout
    nodepool = kubectl("explain", "nodepool").stdout
    assert "GROUP:      karpenter.sh\nKIND:       NodePool\nVERSION:    v1\n" in nodepool
    assert "spec\t<Object> -required-" in nodepool


DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {{app: checkout}}
  template:
    metadata:
      labels: {{app: checkout}}
    spec:
      containers:
        - name: checkout
          image: {image}
        - name: sidecar
          image: busybox:1.36
"""


def test_apply_of_a_built_in_kind_patches_lists_by_their_merge_keys(
    kubectl: Kubectl, cluster: SandboxServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT_YAML.format(image="nginx:1.27"))
    assert kubectl("apply", "-f", str(manifest)).stdout == "deployment.apps/checkout created\n"
    manifest.write_text(DEPLOYMENT_YAML.format(image="nginx:1.28"))
    assert kubectl("apply", "-f", str(manifest)).stdout == "deployment.apps/checkout configured\n"
    stored = cluster.api.store.must_get(cluster.api.rt("apps", "v1", "deployments"), "shop", "checkout")
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("checkout", "nginx:1.28"),
        ("sidecar", "busybox:1.36"),
    ]
