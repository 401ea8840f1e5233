"""The shipped scenarios: they validate, `demo` is the cluster examples/plan.yaml migrates, `faults`
is the demo with faults on, and `scale` makes 5,000 nodes and 100,000 pods without listing them."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from sandbox.aws import AmiFamily, NodeInstance, NodeOsInfo
from sandbox.scenarios import Scenario, ScenarioInvalid, ScenarioNotFound, load_scenario, scenario_names
from sandbox.scenarios.build import aws_seed, kube_objects, slack_seed

PLAN = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "plan.yaml").read_text())


def fake_instances(scenario: Scenario) -> list[NodeInstance]:
    """Instances as the AWS emulator would hand them back, without starting it."""
    os_info = NodeOsInfo("Amazon Linux 2", "5.10.226-214.880.amzn2.x86_64", "containerd://1.7.22", "v1.31.0")
    out: list[NodeInstance] = []
    sources = [(g.name, None, g.instance_type, g.desired) for g in scenario.node_groups]
    sources += [(None, p.name, p.instance_type, p.nodes) for p in scenario.nodepools]
    for group, pool, itype, count in sources:
        for _ in range(count):
            n = len(out)
            zone = scenario.cluster.zones[n % len(scenario.cluster.zones)]
            ip = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
            out.append(
                NodeInstance(
                    name=f"ip-{ip.replace('.', '-')}.us-west-2.compute.internal",
                    instance_id=f"i-{n:017x}",
                    zone=zone,
                    private_ip=ip,
                    subnet_id="subnet-1",
                    instance_type=itype,
                    image_id="ami-1",
                    ami_name="amazon-eks-node-1.31-v20241024",
                    ami_family=AmiFamily.AL2,
                    ami_release="v20241024",
                    http_tokens="required",
                    ebs_encrypted=True,
                    ssh_key_name=None,
                    launched_at=datetime.datetime.now(datetime.UTC),
                    os=os_info,
                    node_group=group,
                    nodepool=pool,
                    nodeclass=next((p.nodeclass for p in scenario.nodepools if p.name == pool), None),
                    nodeclaim=f"{pool}-{n:05d}" if pool else None,
                )
            )
    return out


def test_every_shipped_scenario_validates() -> None:
    assert set(scenario_names()) >= {"demo", "faults", "scale"}
    for name in scenario_names():
        assert load_scenario(name).name == name


def test_an_unknown_scenario_names_the_ones_that_exist() -> None:
    with pytest.raises(ScenarioNotFound) as missing:
        load_scenario("nope")
    assert "'nope'" in str(missing.value) and "demo, faults, scale" in str(missing.value)


def test_a_scenario_that_contradicts_itself_is_refused_with_every_reason() -> None:
    data = load_scenario("demo").model_dump()
    data["nodepools"][0]["nodeclass"] = "missing"
    data["faults"]["blocked_pdbs"] = ["payments/nope"]
    with pytest.raises(ValueError, match="is not declared") as refused:
        Scenario.model_validate(data)
    assert "nodeclass missing is not declared" in str(refused.value)
    assert "no PDB payments/nope" in str(refused.value)
    with pytest.raises(ValueError, match="extra"):
        Scenario.model_validate({**load_scenario("demo").model_dump(), "nodegroups": []})
    assert issubclass(ScenarioInvalid, ValueError)


def test_the_demo_is_the_cluster_the_example_plan_migrates() -> None:
    demo = load_scenario("demo")
    [cluster] = PLAN["clusters"]
    assert (demo.cluster.name, demo.cluster.region, demo.cluster.context) == (
        cluster["name"],
        cluster["region"],
        cluster["kube_context"],
    )
    wave_groups = {g for w in PLAN["waves"] for g in w["selector"].get("managed_node_groups", [])}
    wave_pools = {p for w in PLAN["waves"] for p in w["selector"].get("nodepools", [])}
    assert {g.name: g.desired for g in demo.node_groups} == {"ng-web": 10, "ng-batch": 6, "ng-data": 4}
    assert {g.name for g in demo.node_groups} == wave_groups
    assert {p.name for p in demo.nodepools} == wave_pools
    assert all(g.ami_family == "AL2" for g in demo.node_groups)
    assert [c.ami_alias for c in demo.nodeclasses] == ["al2@latest"]
    assert len(demo.cluster.zones) == 2
    assert (demo.slack.migration_channel, demo.slack.alerts_channel) == (
        PLAN["channels"]["migration"],
        PLAN["channels"]["alerts"],
    )
    by_role = {
        role: {u.id for u in demo.slack.users if role in u.roles} for role in ("sre", "team_lead", "oncall")
    }
    assert set(PLAN["roles"]["sre"]["users"]) <= by_role["sre"]
    assert set(PLAN["roles"]["team_leads"]["users"]) <= by_role["team_lead"]
    assert set(PLAN["roles"]["oncall"]["users"]) <= by_role["oncall"]
    assert set(PLAN["roles"]["oncall"]["usergroups"]) <= {g.id for g in demo.slack.usergroups}
    assert any(not u.roles for u in demo.slack.users), "someone without a role"
    seed = slack_seed(demo)
    assert {c.id for c in seed.channels} >= {"C0MIGRATION", "C0ALERTS01"}
    # The node role has an inline policy beside its managed ones (the security report reads both).
    assert [name for name, _ in aws_seed(demo).node_role_inline_policies] == ["node-logs"]


def test_the_demo_holds_a_workload_bottlerocket_breaks_and_the_awkward_cases() -> None:
    demo = load_scenario("demo")
    built = kube_objects(demo, fake_instances(demo), 1.7e9)
    pods = [o for o in built.objects if o["kind"] == "Pod"]
    assert not built.unscheduled_pods
    tuner = next(
        o for o in built.objects if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "node-tuner"
    )
    spec = tuner["spec"]["template"]["spec"]
    assert spec["containers"][0]["securityContext"]["privileged"] is True
    assert any(v["hostPath"]["path"] == "/usr/local/bin" for v in spec["volumes"])
    assert "yum install" in " ".join(spec["containers"][0]["command"])
    assert any(
        p["metadata"].get("annotations", {}).get("karpenter.sh/do-not-disrupt") == "true" for p in pods
    )
    bare = [p for p in pods if not p["metadata"].get("ownerReferences")]
    assert [p["metadata"]["name"] for p in bare] == ["adhoc-backfill"]
    orders = [p for p in pods if p["metadata"]["name"].startswith("orders-db-")]
    assert len(orders) == 3 and all(p["spec"]["nodeSelector"] == {"workload-class": "data"} for p in orders)
    nodes = {o["metadata"]["name"]: o for o in built.objects if o["kind"] == "Node"}
    assert all(
        nodes[p["spec"]["nodeName"]]["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "ng-data"
        for p in orders
    )
    # every DaemonSet that tolerates everything runs once on every node
    assert sum(1 for p in pods if p["metadata"]["name"].startswith("aws-node-")) == len(nodes) == 24
    pdb = next(
        o
        for o in built.objects
        if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "orders-db"
    )
    assert pdb["spec"] == {"selector": {"matchLabels": {"app": "orders-db"}}, "maxUnavailable": 1}


def test_faults_is_the_demo_with_faults_on() -> None:
    demo, faults = load_scenario("demo"), load_scenario("faults")
    assert faults.node_groups == demo.node_groups and faults.namespaces == demo.namespaces
    assert faults.faults.api.error_fraction == 0.05 and set(faults.faults.api.error_codes) == {429, 500, 503}
    assert faults.faults.api.retry_after_seconds > 0 and faults.faults.api.latency_seconds > 0
    built = kube_objects(faults, fake_instances(faults), 1.7e9)
    assert len(built.never_ready_nodes) == 1
    pdb = next(
        o
        for o in built.objects
        if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "orders-db"
    )
    assert pdb["spec"]["maxUnavailable"] == 0


def test_scale_makes_5000_nodes_and_100000_pods_all_placed() -> None:
    scale = load_scenario("scale")
    assert scale.node_count == 5000
    built = kube_objects(scale, fake_instances(scale), 1.7e9)
    assert built.pod_count == 100_000
    assert not built.unscheduled_pods


def test_rbac_groups_bind_an_operator_who_migrates_nodes_and_a_viewer_who_only_reads() -> None:
    demo = load_scenario("demo")
    scenario = Scenario.model_validate(
        {**demo.model_dump(), "rbac_groups": {"platform-sre": "operator", "auditors": "view"}}
    )
    objects = kube_objects(scenario, fake_instances(scenario), 1.7e9).objects
    roles = {o["metadata"]["name"]: o["rules"] for o in objects if o["kind"] == "ClusterRole"}
    bound = {
        o["subjects"][0]["name"]: o["roleRef"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"
    }
    assert bound == {"platform-sre": "sandbox:operator", "auditors": "sandbox:view"}
    verbs = {
        name: {(v, r) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
        for name, rules in roles.items()
    }
    assert {v for v, _ in verbs["sandbox:view"]} == {"get", "list", "watch"}
    writes = {(v, r) for v, r in verbs["sandbox:operator"] if v not in ("get", "list", "watch")}
    assert {("patch", "nodes"), ("create", "pods/eviction"), ("patch", "nodepools"),
            ("create", "ec2nodeclasses"), ("delete", "nodeclaims")} <= writes  # fmt: skip
    assert not {r for v, r in writes if v == "delete"} - {"nodeclaims"}
