"""AwsAdapter against the sandbox's AWS (moto over HTTP): the endpoint comes from AWS_ENDPOINT_URL by
boto3's own configuration chain; ClientError never leaks out."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import botocore.exceptions
import pytest

from bot.adapters.aws import AwsAdapter
from bot.adapters.errors import Invalid, NotFound, TemporaryError
from sandbox.aws import AwsEmulator, AwsSeed, NodeGroupSeed, SeedResult

CLUSTER = "adapters"


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[AwsEmulator, SeedResult]]:
    with AwsEmulator(region="us-west-2") as aws:
        yield (
            aws,
            aws.seed(
                AwsSeed(cluster_name=CLUSTER, node_groups=(NodeGroupSeed("shop", desired=3, max_size=6),))
            ),
        )


@pytest.fixture
def adapter(seeded: tuple[AwsEmulator, SeedResult], monkeypatch: pytest.MonkeyPatch) -> AwsAdapter:
    aws, _ = seeded
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    session = boto3.session.Session(
        aws_access_key_id=aws.credentials.access_key_id,
        aws_secret_access_key=aws.credentials.secret_access_key,
        region_name=aws.region,
    )
    return AwsAdapter(aws.region, session=session, max_attempts=2)


def test_describes_a_managed_node_group(adapter: AwsAdapter) -> None:
    group = adapter.describe_nodegroup(CLUSTER, "shop")
    assert (group.desired_size, group.ami_type, group.status) == (3, "AL2_x86_64", "ACTIVE")
    assert adapter.list_nodegroups(CLUSTER) == ["shop"]


def test_an_unknown_node_group_is_not_found(adapter: AwsAdapter) -> None:
    with pytest.raises(
        NotFound, match="describe node group adapters/nope: ResourceNotFoundException"
    ) as info:
        adapter.describe_nodegroup(CLUSTER, "nope")
    assert isinstance(info.value.__cause__, botocore.exceptions.ClientError)


def test_scaling_a_node_group_changes_its_desired_size(adapter: AwsAdapter) -> None:
    adapter.scale_nodegroup(CLUSTER, "shop", desired=4)
    assert adapter.describe_nodegroup(CLUSTER, "shop").desired_size == 4
    adapter.scale_nodegroup(CLUSTER, "shop", desired=3)


def test_instances_by_id_and_unknown_ids(adapter: AwsAdapter, seeded: tuple[AwsEmulator, SeedResult]) -> None:
    ids = [n.instance_id for n in seeded[1].nodes_of_group("shop")]
    found = adapter.describe_instances(ids)
    assert sorted(i["InstanceId"] for i in found) == sorted(ids)
    with pytest.raises((NotFound, Invalid)):
        adapter.describe_instances(["i-0123456789abcdef0"])


def test_ssm_public_parameters_resolve_to_images(adapter: AwsAdapter) -> None:
    image_id = adapter.get_parameter("/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id")
    (image,) = adapter.describe_images([image_id])
    assert image["Name"].startswith("bottlerocket-aws-k8s-1.31-x86_64-")
    with pytest.raises(NotFound, match="ParameterNotFound"):
        adapter.get_parameter("/aws/service/bottlerocket/aws-k8s-9.99/x86_64/latest/image_id")


def test_an_unreachable_endpoint_is_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-west-2")
    adapter = AwsAdapter("us-west-2", session=session, max_attempts=1, connect_timeout=1)
    with pytest.raises(TemporaryError, match="describe node group"):
        adapter.describe_nodegroup(CLUSTER, "shop")
