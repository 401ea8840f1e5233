"""`Sandbox("demo")` as the bot's tests will use it: real kubectl, boto3, slack_sdk and the official
Kubernetes client against the endpoints it prints, and the admin surface beside them."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from slack_sdk import WebClient

from sandbox.main import Sandbox


@pytest.fixture(scope="module")
def demo() -> Iterator[Sandbox]:
    started = time.monotonic()
    with Sandbox("demo", time_scale=10) as sb:
        sb.started_in = time.monotonic() - started  # type: ignore[attr-defined]
        yield sb


def kubectl(sb: Sandbox, *args: str, context: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH: the sandbox's fidelity tests need the real kubectl")
    cmd = [binary, "--kubeconfig", str(sb.kubeconfig), *(["--context", context] if context else []), *args]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(sb.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
    )


def admin(sb: Sandbox, path: str, *, method: str = "GET", body: Any = None, token: str | None = "") -> Any:
    request = urllib.request.Request(
        sb.admin_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={} if token is None else {"Authorization": f"Bearer {token or sb.admin_token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read()
        return json.loads(raw) if answer.headers.get_content_type() == "application/json" else raw.decode()


def test_the_demo_starts_in_a_few_seconds(demo: Sandbox) -> None:
    assert demo.started_in < 15  # type: ignore[attr-defined]
    assert [line.split(": ")[0] for line in demo.endpoint_lines()] == [
        "kubeconfig",
        "aws endpoint",
        "slack api",
        "admin",
    ]


def test_kubectl_sees_the_al2_nodes_of_three_node_groups_and_a_nodepool(demo: Sandbox) -> None:
    result = kubectl(demo, "get", "nodes", "-o", "wide")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert len(rows) >= 24
    assert all("Amazon Linux 2" in row and " Ready " in row for row in rows)
    groups = kubectl(demo, "get", "nodes", "-L", "eks.amazonaws.com/nodegroup,karpenter.sh/nodepool").stdout
    for name, count in (("ng-web", 10), ("ng-batch", 6), ("ng-data", 4), ("general-al2", 4)):
        assert groups.count(f" {name}") == count, name


def test_kubectl_sees_the_workloads_in_every_namespace(demo: Sandbox) -> None:
    result = kubectl(demo, "get", "pods", "-A")
    assert result.returncode == 0, result.stderr
    for expected in (
        "storefront-",
        "cart-",
        "payments-api-",
        "orders-db-0",
        "orders-db-2",
        "search-api-",
        "report-worker-",
        "node-tuner-",
        "fluent-bit-",
        "aws-node-",
        "kube-proxy-",
        "adhoc-backfill",
        "fraud-scorer-",
        "image-resizer-",
    ):
        assert expected in result.stdout, expected
    assert "Pending" not in result.stdout
    pdbs = kubectl(demo, "get", "pdb", "-A").stdout
    assert "orders-db" in pdbs and "storefront" in pdbs


def test_kubectl_sees_the_karpenter_nodepool_its_nodeclass_and_nodeclaims(demo: Sandbox) -> None:
    result = kubectl(demo, "get", "nodepools,ec2nodeclasses,nodeclaims")
    assert result.returncode == 0, result.stderr
    assert "nodepool.karpenter.sh/general-al2" in result.stdout
    assert "ec2nodeclass.karpenter.k8s.aws/al2" in result.stdout
    assert result.stdout.count("nodeclaim.karpenter.sh/general-al2-") == 4


def test_every_node_is_an_emulated_ec2_instance_with_its_provider_id(demo: Sandbox) -> None:
    assert demo.aws is not None
    ec2 = boto3.client("ec2", **demo.aws.client_kwargs())
    instances = {
        i["InstanceId"]: i
        for page in ec2.get_paginator("describe_instances").paginate()
        for r in page["Reservations"]
        for i in r["Instances"]
    }
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(demo.kubeconfig)))
    nodes = core.list_node().items
    assert len(nodes) == len(instances) == 24
    for node in nodes:
        zone, instance_id = node.spec.provider_id.removeprefix("aws:///").split("/")
        assert instances[instance_id]["Placement"]["AvailabilityZone"] == zone
        assert instances[instance_id]["PrivateDnsName"] == node.metadata.name
    imds_v1 = [i for i in instances.values() if i["MetadataOptions"]["HttpTokens"] == "optional"]
    assert 0 < len(imds_v1) < len(instances)


def test_the_bot_token_authenticates_and_posts_into_the_migration_channel(demo: Sandbox) -> None:
    info = admin(demo, "/scenario")
    slack = info["slack"]
    assert slack["channels"]["migration"] == "C0MIGRATION" and slack["channels"]["alerts"] == "C0ALERTS01"
    bot = WebClient(token=slack["botToken"], base_url=demo.slack_api_url)
    assert bot.auth_test()["user_id"] == slack["botUserId"]
    bot.chat_postMessage(channel="C0MIGRATION", text="wave 1 requested")
    assert "wave 1 requested" in admin(demo, "/slack/transcript/C0MIGRATION")
    members = bot.usergroups_users_list(usergroup="S0ONCALL01")["users"]
    assert members
    roles = {u["id"]: u["roles"] for u in slack["users"]}
    assert roles["U0SRE00001"] == ["sre"] and roles["U0LEAD0002"] == ["team_lead"]
    assert roles["U0ONCALL01"] == ["oncall"] and [] in roles.values()


def test_the_scenario_facts_match_the_example_plan(demo: Sandbox) -> None:
    info = admin(demo, "/scenario")
    assert info["cluster"]["name"] == "sandbox-demo" and info["cluster"]["region"] == "us-west-2"
    assert info["cluster"]["context"] == "sandbox-demo"
    assert [g["name"] for g in info["nodeGroups"]] == ["ng-web", "ng-batch", "ng-data"]
    assert [p["name"] for p in info["nodePools"]] == ["general-al2"]
    assert json.loads(demo.info_file.read_text())["admin"]["token"] == demo.admin_token
    assert demo.info_file.stat().st_mode & 0o077 == 0


def test_the_bot_context_is_a_service_account_recorded_in_the_request_log(demo: Sandbox) -> None:
    result = kubectl(
        demo, "auth", "can-i", "create", "pods", "--subresource=eviction", "-A", context=demo.bot_context
    )
    assert result.stdout.strip() == "yes", result.stderr
    sa = "system:serviceaccount:migratebot:migratebot"
    items = admin(demo, f"/kube/requests?user={sa}")["items"]
    assert items and all(e["user"] == sa for e in items)


def test_the_admin_surface_needs_the_admin_token(demo: Sandbox) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        admin(demo, "/ground-truth", token=None)
    assert refused.value.code == 401
    truth = admin(demo, f"/ground-truth?token={demo.admin_token}", token=None)
    assert len(truth["nodes"]) == 24
    assert set(admin(demo, "/faults")) >= {"api", "scenario"}


def test_runtime_api_faults_reach_the_official_client_with_retry_after(demo: Sandbox) -> None:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(demo.kubeconfig), client_configuration=cfg)
    cfg.retries = urllib3.Retry(total=0, status=0, respect_retry_after_header=False, raise_on_status=False)
    core = client.CoreV1Api(client.ApiClient(cfg))
    admin(
        demo,
        "/faults",
        method="POST",
        body={"api": {"error_fraction": 1.0, "error_codes": [503], "retry_after_seconds": 2}},
    )
    try:
        with pytest.raises(ApiException) as failed:
            core.list_namespace()
        assert failed.value.status == 503 and failed.value.headers["Retry-After"] == "2"
        assert admin(demo, "/faults")["api"]["counts"]["failed"]["503"] >= 1
    finally:
        admin(demo, "/faults", method="DELETE")
    assert core.list_namespace().items


def test_faults_that_need_the_controllers_are_accepted_at_runtime(demo: Sandbox) -> None:
    answer = admin(demo, "/faults", method="POST", body={"never_ready": {"node_group": "ng-batch"}})
    fault_id = answer["added"]["never_ready"]
    assert str(fault_id) in json.dumps(answer["controllers"])
    admin(demo, "/faults", method="POST", body={"clear": fault_id})
    with pytest.raises(urllib.error.HTTPError) as refused:
        admin(demo, "/faults", method="POST", body={"flood": {}})
    assert refused.value.code == 400


def test_people_the_bot_impersonates_hold_the_plans_groups_permissions(demo: Sandbox) -> None:
    def can_i(*args: str, group: str) -> str:
        result = kubectl(demo, "auth", "can-i", *args, "--as", "alice@example.com", "--as-group", group,
                         context=demo.bot_context)  # fmt: skip
        return result.stdout.strip()

    assert can_i("patch", "nodes", group="platform-sre") == "yes"
    assert can_i("create", "pods", "--subresource=eviction", "-A", group="platform-sre") == "yes"
    assert can_i("patch", "nodepools.karpenter.sh", group="platform-sre") == "yes"
    # Team leads change the cluster too: the engine acts as the approving lead when the requester is
    # not mapped, and leads roll waves back.
    assert can_i("patch", "nodes", group="platform-leads") == "yes"
    assert can_i("delete", "nodeclaims.karpenter.sh", group="platform-leads") == "yes"
    # An operator migrates nodes, nothing else; a group the scenario does not name holds nothing.
    assert can_i("delete", "pods", "-A", group="platform-sre") == "no"
    assert can_i("list", "pods", "-A", group="developers") == "no"
