"""Issue 4's acceptance on the whole demo: pointing the general-al2 NodePool at a Bottlerocket
EC2NodeClass (with the real kubectl) makes Karpenter replace its nodes, one at a time within the
budget, and the ground truth shows no PDB violation.

The demo places search/search-api (4 replicas, PDB maxUnavailable 1) and analytics/dashboard on the
pool (`workload-class: general`). The test also pins the do-not-disrupt payments/fraud-scorer there,
to show Karpenter leaves its node alone; everything else is the stock demo.

Time runs 100x faster (about 6 emulated minutes of drift in a few real seconds); nothing here
measures a latency, so real milliseconds turned into emulated seconds do not matter.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_controllers_support import ready, wait_for

from sandbox.kube.jsontypes import JSON
from sandbox.main import Sandbox
from sandbox.scenarios import Scenario, load_scenario

SCALE = 100.0
POOL = "general-al2"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def _kubectl(sb: Sandbox, *args: str) -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH: the sandbox's fidelity tests need the real kubectl")
    result = subprocess.run(
        [binary, "--kubeconfig", str(sb.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(sb.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _list(sb: Sandbox, group: str, version: str, resource: str) -> list[JSON]:
    api = sb.kube_server.api
    items, _, _ = api.store.list_objects(api.rt(group, version, resource))
    return items


def _node_ready(node: JSON) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def _os(node: JSON) -> str:
    return str(node["status"]["nodeInfo"]["osImage"])


def _owner(pod: JSON) -> str:
    refs = [r for r in pod["metadata"].get("ownerReferences", []) if r.get("controller")]
    return refs[0]["kind"] if refs else ""


def _key(pod: JSON) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


PINNED = {"payments/fraud-scorer"}


def _demo_with_pool_workloads() -> Scenario:
    data = load_scenario("demo").model_dump()
    for ns in data["namespaces"]:
        for w in ns["workloads"]:
            if f"{ns['name']}/{w['name']}" in PINNED:
                w["node_selector"] = {"workload-class": "general"}
    return Scenario.model_validate(data)


@pytest.mark.kubectl
def test_demo_nodepool_drifts_to_bottlerocket_within_budget_without_pdb_violation() -> None:
    with Sandbox(_demo_with_pool_workloads(), time_scale=SCALE) as sb:
        ctl = sb.controllers
        assert ctl is not None
        nodes = _list(sb, "", "v1", "nodes")
        pool_nodes = {
            n["metadata"]["name"] for n in nodes if n["metadata"]["labels"].get(NODEPOOL_LABEL) == POOL
        }
        group_nodes = {
            n["metadata"]["name"]: (n["spec"]["providerID"], _os(n))
            for n in nodes
            if NODEGROUP_LABEL in n["metadata"]["labels"]
        }
        assert len(pool_nodes) == 4 and len(group_nodes) == 20
        assert all(_os(n) == "Amazon Linux 2" for n in nodes)
        wait_for(
            "every demo pod on the NodePool Ready",
            lambda: all(
                ready(p) for p in _list(sb, "", "v1", "pods") if p["spec"].get("nodeName") in pool_nodes
            ),
            timeout=30,
        )
        pods = _list(sb, "", "v1", "pods")
        on_pool = [p for p in pods if p["spec"].get("nodeName") in pool_nodes]
        # Pods that must come back elsewhere: not node agents, not bare pods (nothing recreates those).
        movable = [p for p in on_pool if _owner(p) in ("ReplicaSet", "StatefulSet")]
        held = {
            p["spec"]["nodeName"]
            for p in on_pool
            if (p["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT) == "true"
        }
        # search-api 4 + dashboard 1 + fraud-scorer 1; fraud-scorer's do-not-disrupt holds its node.
        assert len(movable) == 6 and len(held) == 1
        to_replace = pool_nodes - held
        assert to_replace, "every NodePool node is held by a do-not-disrupt pod"

        # A Bottlerocket EC2NodeClass: the al2 one's role and selectors, another AMI alias.
        al2 = next(
            c
            for c in _list(sb, "karpenter.k8s.aws", "v1", "ec2nodeclasses")
            if c["metadata"]["name"] == "al2"
        )
        spec = {
            k: al2["spec"][k]
            for k in ("role", "subnetSelectorTerms", "securityGroupSelectorTerms")
            if k in al2["spec"]
        }
        bottlerocket = {
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": "bottlerocket"},
            "spec": {**spec, "amiSelectorTerms": [{"alias": "bottlerocket@v1.26.2"}]},
        }
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "bottlerocket.json"
            manifest.write_text(json.dumps(bottlerocket))
            _kubectl(sb, "create", "-f", str(manifest))
        _kubectl(
            sb,
            "patch",
            "nodepool",
            POOL,
            "--type",
            "merge",
            "-p",
            '{"spec":{"disruption":{"budgets":[{"nodes":"1","reasons":["Drifted"]}]}}}',
        )
        _kubectl(
            sb,
            "patch",
            "nodepool",
            POOL,
            "--type",
            "merge",
            "-p",
            '{"spec":{"template":{"spec":{"nodeClassRef":{"name":"bottlerocket"}}}}}',
        )

        def pool_is_bottlerocket() -> bool:
            current = _list(sb, "", "v1", "nodes")
            mine = [n for n in current if n["metadata"]["labels"].get(NODEPOOL_LABEL) == POOL]
            names = {n["metadata"]["name"] for n in mine}
            return (
                not (to_replace & names)
                and held <= names
                and all(_node_ready(n) for n in mine)
                and all(
                    _os(n).startswith("Bottlerocket OS") for n in mine if n["metadata"]["name"] not in held
                )
            )

        wait_for(
            "every general-al2 node replaced by a Ready Bottlerocket node", pool_is_bottlerocket, timeout=45
        )

        def movable_ready_again() -> bool:
            current = _list(sb, "", "v1", "pods")
            return all(_replacement_ready(current, p) for p in movable)

        wait_for("every moved pod Ready again", movable_ready_again, timeout=15)
        truth = ctl.ground_truth()

        # No PDB violation, and every eviction went through the API with its PDB honoured.
        assert truth["pdbViolations"] == []
        assert {e["by"] for e in truth["evictions"]} == {"karpenter"}

        # Every pod evicted from an old node came back: its replacement (followed while it was evicted
        # again from a node drifted later) is Ready and still there.
        evicted = [_key(p) for p in movable if "evicted" in truth["pods"][_key(p)]]
        assert len(evicted) == len(movable) - len([p for p in movable if p["spec"]["nodeName"] in held])
        for key in evicted:
            record = truth["pods"][key]
            while "replacement" in record and "deleted" in record:
                record = truth["pods"][record["replacement"]]
            assert "deleted" not in record and record.get("ready"), (key, record)

        # The budget: at most one general-al2 node disrupted at a time.
        olds = sorted((truth["nodes"][n] for n in to_replace), key=lambda r: r["disrupted"]["at"])
        assert all(r["disrupted"]["reason"] == "Drifted" for r in olds)
        for before, after in itertools.pairwise(olds):
            assert after["disrupted"]["at"] >= before["deleted"], "two drifted nodes were disrupted at once"

        # A do-not-disrupt pod's node is drifted but left alone.
        for name in held:
            assert "disrupted" not in truth["nodes"][name]
            node = next(n for n in _list(sb, "", "v1", "nodes") if n["metadata"]["name"] == name)
            assert _os(node) == "Amazon Linux 2"
            assert not [t for t in node["spec"].get("taints", []) if t["key"] == "karpenter.sh/disrupted"]

        # The new nodes are Karpenter Bottlerocket nodes of the pool.
        new = {
            name: r
            for name, r in truth["nodes"].items()
            if name not in pool_nodes and name not in group_nodes and "deleted" not in r
        }
        assert len(new) == len(to_replace), new
        assert all(r["os"] == "Bottlerocket" for r in new.values())

        # The managed node groups' AL2 nodes are untouched.
        after = {n["metadata"]["name"]: n for n in _list(sb, "", "v1", "nodes")}
        for name, (provider_id, os_image) in group_nodes.items():
            assert name in after and after[name]["spec"]["providerID"] == provider_id
            assert _os(after[name]) == os_image == "Amazon Linux 2"
            assert "disrupted" not in truth["nodes"][name] and "deleted" not in truth["nodes"][name]
            assert not after[name]["spec"].get("unschedulable")
        assert not [
            e for e in truth["evictions"] if _node_of(pods, e["namespace"], e["pod"]) not in to_replace
        ]


def _node_of(pods: list[JSON], namespace: str, name: str) -> str:
    return next(
        (
            p["spec"].get("nodeName", "")
            for p in pods
            if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name
        ),
        "",
    )


def _replacement_ready(current: list[JSON], pod: JSON) -> bool:
    """The pod itself is still Ready, or its controller has as many Ready pods as it wants."""
    same = [p for p in current if _key(p) == _key(pod)]
    if same and same[0]["metadata"]["uid"] == pod["metadata"]["uid"]:
        return ready(same[0]) and not same[0]["metadata"].get("deletionTimestamp")
    owner = next(r["uid"] for r in pod["metadata"]["ownerReferences"] if r.get("controller"))
    siblings = [
        p
        for p in current
        if any(r["uid"] == owner for r in p["metadata"].get("ownerReferences", []))
        and not p["metadata"].get("deletionTimestamp")
    ]
    return bool(siblings) and all(ready(p) for p in siblings)
