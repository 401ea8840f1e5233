"""docs/iam-policy.json allows every AWS call the bot's adapter makes, on the resources it makes them
on, and grants nothing else.

Two records of the calls: the adapter's source (every boto3 operation bot/adapters/aws/client.py
names), and a run of every AwsAdapter method against the sandbox's AWS (moto over HTTP) recorded
through botocore's own event hook. The full demo's record goes through the same iam_coverage helpers.
"""

from __future__ import annotations

import inspect
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


def test_the_policy_grants_exactly_the_actions_the_adapter_names() -> None:
    named = actions_of(operations_in_source(Path(inspect.getfile(aws_client))))
    granted = granted_actions(POLICY)
    assert sorted(named - granted) == [], "the adapter calls these and the policy does not allow them"
    assert sorted(granted - named) == [], "the policy grants these and no adapter code calls them"


def test_operation_names_map_to_iam_actions() -> None:
    assert iam_action("ec2", "DescribeInstances") == "ec2:DescribeInstances"
    assert iam_action("inspector2", "ListFindings") == "inspector2:ListFindings"
    assert iam_action("s3", "ListObjectsV2") == "s3:ListBucket"


def test_resources_are_scoped_where_aws_allows_it() -> None:
    assert allows(POLICY, "ssm:GetParameter", f"arn:aws:ssm:us-west-2::parameter{BOTTLEROCKET_AMI}")
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

    calls: dict[str, Callable[[], object]] = {
        "describe_nodegroup": lambda: adapter.describe_nodegroup(CLUSTER, "shop"),
        "list_nodegroups": lambda: adapter.list_nodegroups(CLUSTER),
        "scale_nodegroup": lambda: adapter.scale_nodegroup(CLUSTER, "shop", desired=2),
        "describe_instances": lambda: instances,
        "describe_images": lambda: adapter.describe_images([adapter.get_parameter(BOTTLEROCKET_AMI)]),
        "get_parameter": lambda: adapter.get_parameter(BOTTLEROCKET_AMI),
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
    public = {n for n, m in inspect.getmembers(AwsAdapter, inspect.isfunction) if not n.startswith("_")}
    assert sorted(public - calls.keys()) == [], "add the new AwsAdapter method to `calls` here"
    for call in calls.values():
        call()

    recorded = recorder.calls
    assert volumes and {c.operation for c in recorded} >= {
        "DescribeVolumes",
        "ListFindings",
        "GetPolicyVersion",
    }
    coverage = policy_coverage(POLICY, recorded)
    assert coverage.denied == (), coverage.report()
    assert coverage.unused == (), coverage.report()


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
