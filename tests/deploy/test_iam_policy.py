"""docs/iam-policy.json allows every AWS call the bot's adapter makes, on the resources it makes them
on, and grants nothing else.

Two records of the calls: the adapter's source (every boto3 operation bot/adapters/aws/client.py
names), and a run of every AwsAdapter method against the sandbox's AWS (moto over HTTP) recorded
through botocore's own event hook. Adapter methods no bot code calls are not granted (NOT_GRANTED):
the policy refuses them. That the whole demo needs every grant, and is refused nothing, is
test_demo_least_privilege.py's assertion, through the same iam_coverage helpers.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from iam_coverage import (
    Call,
    CallRecorder,
    actions_of,
    allows,
    granted_actions,
    iam_action,
    load_policy,
    operations_in_source,
    policy_coverage,
)

from bot.adapters.aws import AwsAdapter
from bot.adapters.aws import client as aws_client
from sandbox.aws import AwsEmulator, AwsSeed, NodeGroupSeed, SeedResult

REPO = Path(__file__).resolve().parents[2]
POLICY = load_policy(REPO / "docs" / "iam-policy.json")
CLUSTER = "iam"
BOTTLEROCKET_AMI = "/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id"

# AwsAdapter methods no bot code calls, so the policy does not grant their actions: method → action.
# When bot code starts calling one, grant its action (with a statement saying why) and drop it here.
NOT_GRANTED: dict[str, str] = {
    # Karpenter resolves the EC2NodeClass's AMI alias itself; the bot never reads SSM.
    "get_parameter": "ssm:GetParameter",
    # The plan names its waves' node groups; the bot never lists a cluster's.
    "list_nodegroups": "eks:ListNodegroups",
}


def test_the_policy_grants_exactly_the_actions_the_adapter_names_that_bot_code_calls() -> None:
    named = actions_of(operations_in_source(Path(inspect.getfile(aws_client))))
    wanted = named - set(NOT_GRANTED.values())
    granted = granted_actions(POLICY)
    assert sorted(wanted - granted) == [], "the adapter calls these and the policy does not allow them"
    assert sorted(granted - wanted) == [], "the policy grants these and no adapter code calls them"


def test_no_bot_code_calls_the_adapter_methods_the_policy_does_not_grant() -> None:
    callers = {
        f"{path.relative_to(REPO)}: {method}"
        for root in ("bot", "handlers")
        for path in (REPO / root).rglob("*.py")
        if path.parent.name != "aws" or path.parent.parent.name != "adapters"
        for method in NOT_GRANTED
        if re.search(rf"\.{method}\(", path.read_text())
    }
    assert sorted(callers) == [], (
        "bot code now calls these AwsAdapter methods: grant their actions in docs/iam-policy.json "
        "(docs/operations.md's IAM table too) and remove them from NOT_GRANTED"
    )


def test_operation_names_map_to_iam_actions() -> None:
    assert iam_action("ec2", "DescribeInstances") == "ec2:DescribeInstances"
    assert iam_action("inspector2", "ListFindings") == "inspector2:ListFindings"
    assert iam_action("s3", "ListObjectsV2") == "s3:ListBucket"


def test_resources_are_scoped_where_aws_allows_it() -> None:
    assert allows(
        POLICY, "iam:GetInstanceProfile", "arn:aws:iam::123456789012:instance-profile/eks-node-shop"
    )
    assert not allows(
        POLICY, "ssm:GetParameter", "arn:aws:ssm:us-west-2:123456789012:parameter/prod/db-password"
    )
    assert allows(
        POLICY, "eks:DeleteNodegroup", "arn:aws:eks:us-west-2:123456789012:nodegroup/prod/ng-web/1a2b"
    )
    assert not allows(POLICY, "eks:DeleteCluster", "arn:aws:eks:us-west-2:123456789012:cluster/prod")
    assert not allows(POLICY, "iam:GetRolePolicy", "arn:aws:iam::123456789012:user/alice")
    assert not allows(POLICY, "ec2:TerminateInstances", "*")


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[AwsEmulator, SeedResult]]:
    with AwsEmulator(region="us-west-2") as aws:
        world = aws.seed(AwsSeed(cluster_name=CLUSTER, node_groups=(NodeGroupSeed("shop", desired=2),)))
        # An inline policy on the node role too, as operators add them (the security report reads both).
        boto3.client("iam", **aws.client_kwargs()).put_role_policy(  # type: ignore[call-overload]
            RoleName=world.node_role_arn.rsplit("/", 1)[-1],
            PolicyName="ecr-pull-through",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "ecr:BatchImportUpstreamImage", "Resource": "*"}]}',
        )
        yield aws, world


def test_every_adapter_call_against_the_sandbox_is_allowed_and_every_grant_is_used(
    seeded: tuple[AwsEmulator, SeedResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, world = seeded
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    recorder = CallRecorder(aws.region, world.account_id)
    session = recorder.attach(
        boto3.session.Session(
            aws_access_key_id=aws.credentials.access_key_id,
            aws_secret_access_key=aws.credentials.secret_access_key,
            region_name=aws.region,
        )
    )
    adapter = AwsAdapter(aws.region, session=session, max_attempts=1)
    ids = [n.instance_id for n in world.nodes_of_group("shop")]
    instances = adapter.describe_instances(ids)
    volumes = [
        m["Ebs"]["VolumeId"] for i in instances for m in i.get("BlockDeviceMappings", []) if "Ebs" in m
    ]
    template = adapter.nodegroup_launch_template(CLUSTER, "shop")
    assert template is not None
    role = world.node_role_arn.rsplit("/", 1)[-1]

    images = sorted({i["ImageId"] for i in instances})
    calls: dict[str, Callable[[], object]] = {
        "describe_nodegroup": lambda: adapter.describe_nodegroup(CLUSTER, "shop"),
        "scale_nodegroup": lambda: adapter.scale_nodegroup(CLUSTER, "shop", desired=2),
        "describe_instances": lambda: instances,
        "describe_images": lambda: adapter.describe_images(images),
        "describe_volumes": lambda: adapter.describe_volumes(volumes),
        "describe_security_groups": lambda: adapter.describe_security_groups(
            [world.cluster_security_group_id]
        ),
        "nodegroup_launch_template": lambda: template,
        "launch_template_user_data": lambda: adapter.launch_template_user_data(*template),
        "active_findings": lambda: adapter.active_findings(ids),
        "instance_profile_roles": lambda: adapter.instance_profile_roles(world.instance_profile_arn),
        "role_policy_documents": lambda: adapter.role_policy_documents(role),
        "delete_nodegroup": lambda: adapter.delete_nodegroup(CLUSTER, "shop"),  # last: it is gone after
    }
    not_granted: dict[str, Callable[[], object]] = {
        "get_parameter": lambda: adapter.get_parameter(BOTTLEROCKET_AMI),
        "list_nodegroups": lambda: adapter.list_nodegroups(CLUSTER),
    }
    assert not_granted.keys() == NOT_GRANTED.keys()
    public = {n for n, m in inspect.getmembers(AwsAdapter, inspect.isfunction) if not n.startswith("_")}
    assert sorted(public - calls.keys() - not_granted.keys()) == [], (
        "add the new AwsAdapter method to `calls` here"
    )
    for call in calls.values():
        call()
    recorded = recorder.calls
    for call in not_granted.values():
        call()
    refused = recorder.calls[len(recorded) :]

    assert (
        volumes
        and images
        and {c.operation for c in recorded}
        >= {
            "DescribeVolumes",
            "ListFindings",
            "GetPolicyVersion",
            "GetRolePolicy",
        }
    )
    coverage = policy_coverage(POLICY, recorded)
    assert coverage.denied == (), coverage.report()
    assert coverage.unused == (), coverage.report()
    assert {c.action for c in policy_coverage(POLICY, refused).denied} == set(NOT_GRANTED.values())


def test_a_call_outside_the_policy_is_reported_denied() -> None:
    outside = [
        Call("ec2", "TerminateInstances"),
        Call("ssm", "GetParameter", ("arn:aws:ssm:us-west-2:123456789012:parameter/prod/db-password",)),
    ]
    coverage = policy_coverage(POLICY, outside)
    assert [str(c) for c in coverage.denied] == [
        "ec2:TerminateInstances on *",
        "ssm:GetParameter on arn:aws:ssm:us-west-2:123456789012:parameter/prod/db-password",
    ]
