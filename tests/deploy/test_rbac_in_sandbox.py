"""The chart's rendered RBAC, loaded into the sandbox, runs the bot's Kubernetes work under the
service account's own token: nothing gets 403, and every grant not used is named.

Two runs. The bot's own code as it runs today: an inventory build (bot.engine.inventory), a cordon
and a drain of one node (bot.engine.drain), NodePool get/patch, EC2NodeClass create — no 403; the
grants it leaves unused are printed, not asserted (that run does not do a whole migration). Then
every public KubeAdapter call once: none is refused and every grant serves at least one of them —
so the ClusterRole is exactly the adapter's surface (plus the few requests bot code sends through
KubeAdapter.request itself, in RAW_CALLS). With impersonation on, the ClusterRole keeps the reads and
`impersonate` and drops every write verb: the same adapter calls, the engine's writes made in a
person's name (who holds exactly the rights the chart no longer gives the bot), are again refused
nothing and leave no grant unused. That every grant is needed *by a migration* is the full demo's
assertion (test_demo_least_privilege.py, through rbac_coverage), not this file's.
"""

from __future__ import annotations

import copy
import inspect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from chart_support import AS_ITSELF, NAMESPACE, render
from rbac_coverage import Coverage, grants_for, rbac_coverage
from rbac_sandbox import (
    SANDBOX_GRANT,
    SERVICE_ACCOUNT,
    install_chart_rbac,
    rbac_objects,
    service_account_kubeconfig,
)

from bot.adapters.errors import Forbidden
from bot.adapters.kube import KubeAdapter
from bot.adapters.kube.client import Identity
from bot.engine import headroom
from bot.engine.drain import Drainer, DrainSettings, NodeOutcome, plan_node_drain
from bot.engine.inventory import Inventory
from sandbox import main
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import NODES, tiny_cluster

IMPERSONATION = {"impersonation": {"enabled": True, "users": ["alice@example.com"], "groups": ["sre"]}}
NODE = NODES[0][0]
FAST = DrainSettings(
    max_parallel_nodes=1, retry_interval=0.1, poll_interval=0.05, pod_timeout=10, wave_timeout=30
)

JSON = dict[str, Any]

BOTTLEROCKET_NODECLASS: JSON = {
    "metadata": {"name": "bottlerocket"},
    "spec": {
        "role": "KarpenterNodeRole-sandbox",
        "amiSelectorTerms": [{"alias": "bottlerocket@v1.26.2"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
    },
}


def bottlerocket_nodepool(name: str) -> JSON:
    return {
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": "bottlerocket",
                    },
                    "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}],
                }
            }
        },
    }


# Adapter methods that are not Kubernetes API calls of their own.
TRANSPORT = {"from_kubeconfig", "in_cluster", "contexts", "acting_as", "with_retry", "close", "request",
             "pages", "list_all"}  # fmt: skip

# Adapter methods no bot code calls, so the chart does not grant them, with why.
NOT_GRANTED: dict[str, Callable[[KubeAdapter], object]] = {
    # The drain finds a DaemonSet pod's owner in the inventory's one list of DaemonSets.
    "get_daemonset": lambda k: k.get_daemonset("kube-system", "aws-node"),
}

# Every other KubeAdapter method, called once as the bot would.
ADAPTER_CALLS: dict[str, Callable[[KubeAdapter], object]] = {
    "list_nodes": lambda k: k.list_nodes(),
    "node_pages": lambda k: list(k.node_pages()),
    "get_node": lambda k: k.get_node(NODE),
    "cordon": lambda k: k.cordon(NODES[2][0]),
    "uncordon": lambda k: k.uncordon(NODES[2][0]),
    "pod_pages": lambda k: list(k.pod_pages()),
    "list_pods": lambda k: k.list_pods(field_selector=f"spec.nodeName={NODE}"),
    "get_pod": lambda k: k.get_pod("kube-system", "aws-node-x2k4p"),
    "evict": lambda k: k.evict("shop", "web-7f9c6d8b5-t5v9w"),
    "list_pdbs": lambda k: k.list_pdbs(),
    "list_daemonsets": lambda k: k.list_daemonsets(),
    "list_replicasets": lambda k: k.list_replicasets(),
    "list_deployments": lambda k: k.list_deployments(),
    "list_statefulsets": lambda k: k.list_statefulsets(),
    "get_nodepool": lambda k: k.get_nodepool("default"),
    "list_nodepools": lambda k: k.list_nodepools(),
    "create_nodepool": lambda k: k.create_nodepool(bottlerocket_nodepool("bottlerocket-us-west-2b")),
    "patch_nodepool": lambda k: k.patch_nodepool(
        "default", {"metadata": {"labels": {"migratebot.io/wave": "1"}}}
    ),
    "get_ec2nodeclass": lambda k: k.get_ec2nodeclass("al2"),
    "list_ec2nodeclasses": lambda k: k.list_ec2nodeclasses(),
    "create_ec2nodeclass": lambda k: k.create_ec2nodeclass(
        {**BOTTLEROCKET_NODECLASS, "metadata": {"name": "bottlerocket-b"}}
    ),
    "patch_ec2nodeclass": lambda k: k.patch_ec2nodeclass(
        "al2", {"metadata": {"labels": {"team": "platform"}}}
    ),
    "list_nodeclaims": lambda k: k.list_nodeclaims(),
    "delete_nodeclaim": lambda k: k.delete_nodeclaim("default-8xk2q"),
    "list_events": lambda k: k.list_events(field_selector="type=Warning"),
    "create_lease": lambda k: k.create_lease(NAMESPACE, "migratebot", {"holderIdentity": "migratebot-0"}),
    "get_lease": lambda k: k.get_lease(NAMESPACE, "migratebot"),
    "replace_lease": lambda k: k.replace_lease(
        {
            **(lease := k.get_lease(NAMESPACE, "migratebot")),
            "spec": {**lease["spec"], "holderIdentity": "migratebot-1"},
        }
    ),
}


# The engine's changes to the cluster: made in a person's name when the plan maps people (the chart
# then grants the bot none of them), as the bot otherwise. Every other call is the bot's own.
ENGINE_WRITES = {
    "cordon", "uncordon", "evict", "create_nodepool", "patch_nodepool", "create_ec2nodeclass",
    "patch_ec2nodeclass", "delete_nodeclaim",
}  # fmt: skip
# What the chart grants the bot for them without impersonation (and not with it): the rights the
# cluster's own RBAC must give the people the bot impersonates.
PEOPLES_RIGHTS = {
    ("patch", "", "nodes"), ("create", "", "pods/eviction"), ("create", "karpenter.sh", "nodepools"),
    ("patch", "karpenter.sh", "nodepools"), ("delete", "karpenter.sh", "nodeclaims"),
    ("create", "karpenter.k8s.aws", "ec2nodeclasses"), ("patch", "karpenter.k8s.aws", "ec2nodeclasses"),
}  # fmt: skip


# Bot code that sends its requests through KubeAdapter.request rather than a method of its own.
HEADROOM = headroom.deployments(1, NAMESPACE, Counter({headroom.Shape("default", 250, 2**28): 2}))
RAW_CALLS: dict[str, Callable[[KubeAdapter], object]] = {
    # Pre-provisioning placeholders in the bot's own namespace: created (after a GET by name),
    # watched through their pods, deleted (after a list by label).
    "headroom.create": lambda k: headroom.create(k, HEADROOM),
    "headroom.ready": lambda k: headroom.ready(k, NAMESPACE, 1),
    "headroom.release": lambda k: headroom.release(k, NAMESPACE, 1),
}


class BotUnderRbac:
    """A sandbox holding the chart's RBAC, and a KubeAdapter authenticated as its service account."""

    def __init__(self, sandbox: SandboxServer, manifests: list[JSON], tmp: Path) -> None:
        self.sandbox = sandbox
        self.manifests = manifests
        kubeconfig = service_account_kubeconfig(sandbox, tmp / "migratebot.kubeconfig")
        self.kube = KubeAdapter.from_kubeconfig(str(kubeconfig))
        self.start = len(sandbox.api.log.since(0)[0])

    def coverage(self) -> Coverage:
        log = self.sandbox.api.log.since(self.start)[0]
        return rbac_coverage(log, self.manifests, service_account=SERVICE_ACCOUNT)


def bot_under_rbac(values: JSON, tmp: Path, extra: Sequence[JSON] = ()) -> Iterator[BotUnderRbac]:
    with SandboxServer(objects=[*copy.deepcopy(tiny_cluster()), *extra]) as sb:
        bot = BotUnderRbac(sb, install_chart_rbac(sb, values), tmp)
        try:
            yield bot
        finally:
            bot.kube.close()


# What `migratebot sandbox` grants the bot until the chart's RBAC replaces it.
SANDBOX_CLUSTER_ADMIN: JSON = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": SANDBOX_GRANT},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT[1], "namespace": SERVICE_ACCOUNT[0]}],
}


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[BotUnderRbac]:
    yield from bot_under_rbac(AS_ITSELF, tmp_path, [SANDBOX_CLUSTER_ADMIN])


def test_the_bots_work_today_runs_under_the_charts_rbac_without_a_403(bot: BotUnderRbac) -> None:
    kube = bot.kube
    inventory = Inventory.build(kube)
    assert NODE in inventory.nodes
    plan = plan_node_drain(inventory.nodes[NODE], inventory.pods_on(NODE), daemonsets=inventory.daemonsets)
    (result,) = Drainer(kube, FAST, budgets=inventory.budget_allowances()).drain([plan])
    assert result.outcome is NodeOutcome.DRAINED, result.message
    assert kube.get_node(NODE)["spec"]["unschedulable"] is True
    pool = kube.get_nodepool("default")
    kube.patch_nodepool("default", {"spec": {"template": {"spec": {"nodeClassRef": {
        **pool["spec"]["template"]["spec"]["nodeClassRef"], "name": "bottlerocket"}}}}})  # fmt: skip
    kube.create_ec2nodeclass(BOTTLEROCKET_NODECLASS)
    assert kube.get_ec2nodeclass("bottlerocket")["spec"]["amiSelectorTerms"] == [
        {"alias": "bottlerocket@v1.26.2"}
    ]

    coverage = bot.coverage()
    assert coverage.denied == (), coverage.report()
    print(coverage.report())  # what this partial run did not need: `pytest -s` shows it


def test_every_adapter_call_is_allowed_and_every_grant_serves_one(bot: BotUnderRbac) -> None:
    public = {
        name
        for name, member in inspect.getmembers(KubeAdapter)
        if not name.startswith("_") and (inspect.isfunction(member) or inspect.ismethod(member))
    }
    missing = sorted(public - TRANSPORT - ADAPTER_CALLS.keys() - NOT_GRANTED.keys())
    assert missing == [], (
        f"KubeAdapter.{', '.join(missing)} never runs under the chart's RBAC: add it to ADAPTER_CALLS here "
        "and its rule, commented with why, to helm/migratebot/templates/clusterrole.yaml"
    )
    for name, call in {**ADAPTER_CALLS, **RAW_CALLS}.items():
        try:
            call(bot.kube)
        except Forbidden as e:
            pytest.fail(f"{name}: {e}")

    coverage = bot.coverage()
    assert coverage.denied == (), coverage.report()
    assert coverage.unused == (), coverage.report()
    # When bot code starts calling one of these, grant its rule and move it to ADAPTER_CALLS.
    for call in NOT_GRANTED.values():
        with pytest.raises(Forbidden):
            call(bot.kube)


def test_with_impersonation_the_bot_holds_no_write_of_its_own_on_the_cluster() -> None:
    def grants(values: JSON) -> set[tuple[str, str, str]]:
        return {(g.verb, g.group, g.resource) for g in grants_for(rbac_objects(values), SERVICE_ACCOUNT)}

    own, impersonating = grants(AS_ITSELF), grants(IMPERSONATION)
    assert own - impersonating == PEOPLES_RIGHTS
    assert {v for v, _, _ in impersonating - own} == {"impersonate"}
    cluster_wide = {g for g in grants_for(rbac_objects(IMPERSONATION), SERVICE_ACCOUNT) if not g.namespace}
    assert {g.verb for g in cluster_wide} == {"get", "list", "impersonate"}


def test_with_impersonation_every_adapter_call_is_allowed_and_every_grant_serves_one(tmp_path: Path) -> None:
    # Alice holds, from the cluster's own RBAC, exactly what the chart stops granting the bot.
    rbac = "rbac.authorization.k8s.io"
    rules = [
        {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
        for verb, group, resource in sorted(PEOPLES_RIGHTS)
    ]
    alice_migrates: list[JSON] = [
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": "migrator"}, "rules": rules},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "migrator"},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "migrator"},
         "subjects": [{"apiGroup": rbac, "kind": "Group", "name": "sre"}]},
    ]  # fmt: skip
    assert ENGINE_WRITES - ADAPTER_CALLS.keys() == set()
    for bot in bot_under_rbac(IMPERSONATION, tmp_path, [SANDBOX_CLUSTER_ADMIN, *alice_migrates]):
        as_alice = bot.kube.acting_as(Identity("alice@example.com", ("sre",)))
        for name, call in {**ADAPTER_CALLS, **RAW_CALLS}.items():
            try:
                call(as_alice if name in ENGINE_WRITES else bot.kube)
            except Forbidden as e:
                pytest.fail(f"{name}: {e}")
        with pytest.raises(Forbidden, match="cannot patch resource"):
            bot.kube.cordon(NODE)  # the bot itself: nothing to write with

        coverage = bot.coverage()
        assert len(coverage.denied) == 1, coverage.report()
        assert coverage.unused == (), coverage.report()


def test_nothing_outside_the_bots_needs_is_allowed(bot: BotUnderRbac) -> None:
    kube = bot.kube
    refusals: dict[str, Callable[[], object]] = {
        "read a Secret": lambda: kube.request("GET", "/api/v1/namespaces/shop/secrets"),
        "delete a pod": lambda: kube.request("DELETE", "/api/v1/namespaces/shop/pods/web-7f9c6d8b5-x2k4p"),
        "delete a node": lambda: kube.request("DELETE", f"/api/v1/nodes/{NODE}"),
        "scale a Deployment": lambda: kube.request(
            "PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", body={"spec": {"replicas": 0}},
            content_type="application/merge-patch+json",
        ),
        "delete a NodePool": lambda: kube.request("DELETE", "/apis/karpenter.sh/v1/nodepools/default"),
        "write RBAC": lambda: kube.request(
            "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            body={"metadata": {"name": "x"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                  "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": []},
            content_type="application/json",
        ),
        "impersonate anyone": lambda: kube.acting_as(Identity("alice@example.com")).cordon(NODE),
    }  # fmt: skip
    allowed = []
    for what, attempt in refusals.items():
        try:
            attempt()
            allowed.append(what)
        except Forbidden:
            pass
    assert allowed == []
    assert len(bot.coverage().denied) == len(refusals)


def test_impersonation_is_granted_for_the_configured_identities_only(tmp_path: Path) -> None:
    # The identity the bot acts as needs its own rights in the cluster (the operator grants them).
    rbac = "rbac.authorization.k8s.io"
    alice_may_cordon: list[JSON] = [
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": "cordoner"},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "cordoner"},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cordoner"},
         "subjects": [{"apiGroup": rbac, "kind": "User", "name": "alice@example.com"}]},
    ]  # fmt: skip
    for bot in bot_under_rbac(IMPERSONATION, tmp_path, alice_may_cordon):
        as_alice = bot.kube.acting_as(Identity("alice@example.com", ("sre",)))
        as_alice.cordon(NODE)
        assert as_alice.get_node(NODE)["spec"]["unschedulable"] is True
        assert [
            e["impersonatedBy"] for e in bot.sandbox.api.log.since(bot.start)[0] if e["verb"] == "patch"
        ] == ["system:serviceaccount:migratebot:migratebot"]
        with pytest.raises(Forbidden, match='cannot impersonate resource "users"'):
            bot.kube.acting_as(Identity("mallory@example.com")).cordon(NODE)
        with pytest.raises(Forbidden, match='cannot impersonate resource "groups"'):
            bot.kube.acting_as(Identity("alice@example.com", ("system:masters",))).cordon(NODE)

        coverage = bot.coverage()
        impersonation = [g for g in coverage.grants if g.verb == "impersonate"]
        assert {(g.resource, g.name) for g in impersonation} == {
            ("users", "alice@example.com"),
            ("groups", "sre"),
        }
        assert set(impersonation) <= set(coverage.used)
        assert len(coverage.denied) == 2, coverage.report()


def test_a_plan_that_maps_nobody_renders_no_impersonate_rule() -> None:
    grants = [g for d in rbac_objects(AS_ITSELF) for r in d.get("rules", ()) for g in r["verbs"]]
    assert "impersonate" not in grants and "patch" in grants


def test_the_impersonation_granted_follows_the_plan_the_chart_ships() -> None:
    # The default values ship examples/plan.yaml, which maps alice and carol: the grant is read from
    # the plan itself (nothing to keep in step by hand), and the bot's own writes are gone.
    def impersonated(values: JSON) -> set[tuple[str, str]]:
        return {
            (g.resource, g.name)
            for g in grants_for(rbac_objects(values), SERVICE_ACCOUNT)
            if g.verb == "impersonate"
        }

    example = {
        ("users", "alice@example.com"), ("users", "carol@example.com"),
        ("groups", "platform-sre"), ("groups", "platform-leads"),
    }  # fmt: skip
    assert impersonated({}) == example
    assert grants_for(rbac_objects({}), SERVICE_ACCOUNT) == grants_for(
        rbac_objects({"impersonation": {"enabled": True, "users": ["alice@example.com", "carol@example.com"],
                                        "groups": ["platform-leads", "platform-sre"]}}), SERVICE_ACCOUNT
    )  # fmt: skip
    inline = AS_ITSELF["plan"]["inline"] + "impersonation:\n  U0X: {user: erin@example.com, groups: [ops]}\n"
    assert impersonated({"plan": {"inline": inline}}) == {("users", "erin@example.com"), ("groups", "ops")}
    # A plan in a ConfigMap of the operator's is out of the chart's sight: the values name the people.
    assert impersonated({"plan": {"existingConfigMap": "my-plan"}}) == set()
    assert impersonated({"plan": {"existingConfigMap": "my-plan"}, **IMPERSONATION}) == {
        ("users", "alice@example.com"), ("groups", "sre"),
    }  # fmt: skip


def test_the_in_cluster_kubeconfig_reaches_the_api_with_the_pods_token_file(tmp_path: Path) -> None:
    # The chart's kubeconfig maps the plan's kube_context to the in-cluster API; here its paths and
    # server are pointed at the sandbox, as the pod's mounted token and CA would be at runtime.
    values = {"kubeconfig": {"inClusterContext": "prod-us-west-2"}}
    (config_map,) = [
        d
        for d in render(values)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-kubeconfig")
    ]
    text = config_map["data"]["config"]
    assert "token:" not in text  # a file reference, never the token itself
    for bot in bot_under_rbac(values, tmp_path):
        token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
        token_file.write_text(bot.sandbox.token_for_service_account(*SERVICE_ACCOUNT))
        ca_file.write_bytes(bot.sandbox.ca_pem)
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(
            text.replace("https://kubernetes.default.svc", bot.sandbox.url)
            .replace("/var/run/secrets/kubernetes.io/serviceaccount/token", str(token_file))
            .replace("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", str(ca_file))
        )
        kube = KubeAdapter.from_kubeconfig(str(kubeconfig), "prod-us-west-2")
        assert len(kube.list_nodes()) == len(NODES)
        kube.close()
        log = bot.sandbox.api.log.since(bot.start)[0]
        assert [e["user"] for e in log if e["resource"] == "nodes"] == [
            "system:serviceaccount:migratebot:migratebot"
        ]


def test_the_sandboxs_bot_identity_is_the_charts_service_account() -> None:
    # The full demo narrows the sandbox's cluster-admin grant to this chart's RBAC (rbac_sandbox):
    # it only works while both name the same service account.
    assert (main.BOT_NAMESPACE, main.BOT_SERVICE_ACCOUNT) == SERVICE_ACCOUNT
    (account,) = [d for d in rbac_objects({}) if d["kind"] == "ServiceAccount"]
    assert (account["metadata"]["namespace"], account["metadata"]["name"]) == SERVICE_ACCOUNT
