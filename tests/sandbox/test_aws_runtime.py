"""What the Kubernetes emulation asks of the sandbox's AWS at runtime — launch for a NodeClaim,
terminate, scale a managed node group — checked over HTTP with real boto3 clients.

Every test changes AWS, so each gets an emulator of its own (ephemeral port, its own account).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sandbox.aws import (
    AmiFamily,
    AwsEmulator,
    AwsSeed,
    FindingsPolicy,
    NodeGroupSeed,
    SeverityCounts,
    UnknownInstanceError,
)
from sandbox.aws.inspector import CATALOG

SMALL = AwsSeed(
    cluster_name="small",
    zones=("us-west-2a", "us-west-2b", "us-west-2c"),
    node_groups=(NodeGroupSeed("apps", desired=6, max_size=10, imds_v1_fraction=0.5),),
)


@pytest.fixture
def aws() -> Iterator[AwsEmulator]:
    with AwsEmulator() as emulator:
        emulator.seed(SMALL)
        yield emulator


def _client(aws: AwsEmulator, service: str) -> Any:
    return boto3.client(service, **aws.client_kwargs())  # type: ignore[call-overload]


def _instance(aws: AwsEmulator, instance_id: str) -> dict[str, Any]:
    reservations = _client(aws, "ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance: dict[str, Any] = reservations[0]["Instances"][0]
    return instance


def _active_findings(aws: AwsEmulator, instance_id: str) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = _client(aws, "inspector2").list_findings(
        filterCriteria={
            "resourceId": [{"comparison": "EQUALS", "value": instance_id}],
            "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
        }
    )["findings"]
    return findings


def test_a_nodeclaim_launches_a_bottlerocket_instance_from_the_alias_karpenter_would_resolve(
    aws: AwsEmulator,
) -> None:
    node = aws.launch_instance(
        nodeclaim="default-x7k2p",
        nodepool="default",
        nodeclass="bottlerocket",
        instance_type="m5.xlarge",
        zone="us-west-2b",
        ami="bottlerocket@v1.26.1",
    )

    instance = _instance(aws, node.instance_id)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert instance["ImageId"] == aws.seeded.ami(AmiFamily.BOTTLEROCKET, "1.26.1").image_id
    assert node.ami_name.startswith("bottlerocket-aws-k8s-1.31-x86_64-v1.26.1-")
    assert node.os.os_image == "Bottlerocket OS 1.26.1 (aws-k8s-1.31)"
    assert (instance["Placement"]["AvailabilityZone"], instance["InstanceType"]) == (
        "us-west-2b",
        "m5.xlarge",
    )
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert tags["karpenter.sh/nodeclaim"] == "default-x7k2p"
    assert tags["karpenter.sh/nodepool"] == "default"
    assert tags["karpenter.k8s.aws/ec2nodeclass"] == "bottlerocket"
    assert tags["Name"] == node.name == instance["PrivateDnsName"]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [aws.seeded.karpenter_security_group_id]
    volumes = _client(aws, "ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [node.instance_id]}]
    )["Volumes"]
    assert sorted((v["Attachments"][0]["Device"], v["Size"], v["Encrypted"]) for v in volumes) == [
        ("/dev/xvda", 4, True),
        ("/dev/xvdb", 20, True),
    ]
    assert Counter(f["severity"] for f in _active_findings(aws, node.instance_id)) == {"MEDIUM": 1, "LOW": 1}


def test_an_ami_can_be_named_by_ssm_parameter_or_id_and_unknown_ones_are_refused(aws: AwsEmulator) -> None:
    al2 = aws.seeded.ami(AmiFamily.AL2)

    by_path = aws.resolve_ami("/aws/service/eks/optimized-ami/1.31/amazon-linux-2/recommended/image_id")
    by_id = aws.resolve_ami(al2.image_id)
    latest_bottlerocket = aws.resolve_ami("bottlerocket@latest")

    assert by_path == by_id == al2
    assert latest_bottlerocket.release == "1.26.2"
    with pytest.raises(ValueError, match="does not exist"):
        aws.resolve_ami("bottlerocket@v9.9.9")
    with pytest.raises(ValueError, match="only"):
        aws.resolve_ami("al2023@latest")


def test_terminating_an_instance_closes_its_findings_and_is_idempotent(aws: AwsEmulator) -> None:
    node = aws.launch_instance(
        nodeclaim="default-a", nodepool="default", nodeclass="al2", instance_type="m5.large",
        zone="us-west-2a", ami="al2@latest", http_tokens="optional",
    )  # fmt: skip
    assert len(_active_findings(aws, node.instance_id)) == 8

    aws.terminate_instance(node.instance_id)
    aws.terminate_instance(node.instance_id)

    assert _instance(aws, node.instance_id)["State"]["Name"] == "terminated"
    assert aws.is_terminated(node.instance_id)
    assert _active_findings(aws, node.instance_id) == []
    coverage = _client(aws, "inspector2").list_coverage(
        filterCriteria={"resourceId": [{"comparison": "EQUALS", "value": node.instance_id}]}
    )["coveredResources"]
    assert coverage == []
    with pytest.raises(UnknownInstanceError):
        aws.terminate_instance("i-00000000000000000")


def test_scaling_a_node_group_in_removes_instances_from_the_most_crowded_zones(aws: AwsEmulator) -> None:
    before = aws.node_group_instances("apps")
    assert Counter(n.zone for n in before) == {"us-west-2a": 2, "us-west-2b": 2, "us-west-2c": 2}

    result = aws.scale_node_group("apps", 3)

    assert (result.previous_desired, result.desired, result.launched) == (6, 3, ())
    assert Counter(n.zone for n in result.terminated) == {"us-west-2a": 1, "us-west-2b": 1, "us-west-2c": 1}
    remaining = {n.instance_id for n in aws.node_group_instances("apps")}
    assert remaining == {n.instance_id for n in before} - {n.instance_id for n in result.terminated}
    for gone in result.terminated:
        assert _instance(aws, gone.instance_id)["State"]["Name"] == "terminated"
    group = _client(aws, "eks").describe_nodegroup(clusterName="small", nodegroupName="apps")["nodegroup"]
    assert group["scalingConfig"]["desiredSize"] == 3
    (asg,) = _client(aws, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[aws.seeded.node_groups["apps"].asg_name]
    )["AutoScalingGroups"]
    assert (asg["DesiredCapacity"], {i["InstanceId"] for i in asg["Instances"]}) == (3, remaining)


def test_scaling_a_node_group_out_launches_balanced_instances_the_asg_owns(aws: AwsEmulator) -> None:
    aws.scale_node_group("apps", 4)

    result = aws.scale_node_group("apps", 9)

    assert len(result.launched) == 5
    assert result.terminated == ()
    assert Counter(n.zone for n in aws.node_group_instances("apps")) == {
        "us-west-2a": 3,
        "us-west-2b": 3,
        "us-west-2c": 3,
    }
    for node in result.launched:
        instance = _instance(aws, node.instance_id)
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["eks:nodegroup-name"] == "apps"
        assert tags["aws:autoscaling:groupName"] == aws.seeded.node_groups["apps"].asg_name
        # Half the seeded group allowed IMDSv1, so its launch template still does.
        assert instance["MetadataOptions"]["HttpTokens"] == "optional" == node.http_tokens
        assert len(_active_findings(aws, node.instance_id)) == 8
    (asg,) = _client(aws, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[aws.seeded.node_groups["apps"].asg_name]
    )["AutoScalingGroups"]
    assert asg["DesiredCapacity"] == 9


def test_scaling_beyond_the_group_limits_is_refused_with_the_limits(aws: AwsEmulator) -> None:
    with pytest.raises(ValueError, match=r"outside its scaling limits \[0, 10\]"):
        aws.scale_node_group("apps", 11)
    with pytest.raises(KeyError, match="no managed node group is named web"):
        aws.scale_node_group("web", 1)


def test_terminating_a_node_group_instance_shrinks_the_group_instead_of_replacing_it(
    aws: AwsEmulator,
) -> None:
    victim = aws.node_group_instances("apps")[0]

    aws.terminate_instance(victim.instance_id)

    assert len(aws.node_group_instances("apps")) == 5
    group = _client(aws, "eks").describe_nodegroup(clusterName="small", nodegroupName="apps")["nodegroup"]
    assert group["scalingConfig"]["desiredSize"] == 5


def test_removing_a_node_from_a_group_at_its_minimum_lowers_the_minimum() -> None:
    pinned = AwsSeed(cluster_name="pinned", node_groups=(NodeGroupSeed("core", desired=2, min_size=2),))
    with AwsEmulator() as aws:
        aws.seed(pinned)

        aws.terminate_instance(aws.node_group_instances("core")[0].instance_id)

        (asg,) = _client(aws, "autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[aws.seeded.node_groups["core"].asg_name]
        )["AutoScalingGroups"]
        assert (asg["MinSize"], asg["DesiredCapacity"], len(asg["Instances"])) == (1, 1, 1)
        group = _client(aws, "eks").describe_nodegroup(clusterName="pinned", nodegroupName="core")[
            "nodegroup"
        ]
        assert group["scalingConfig"] == {"minSize": 1, "maxSize": 4, "desiredSize": 1}


def test_a_findings_policy_the_catalog_cannot_satisfy_is_refused_before_seeding() -> None:
    greedy = AwsSeed(cluster_name="greedy", findings=FindingsPolicy(al2=SeverityCounts(critical=50)))

    with AwsEmulator() as aws, pytest.raises(ValueError, match="cannot carry 50 CRITICAL findings"):
        aws.seed(greedy)


def test_seeds_that_contradict_themselves_are_refused_with_every_reason() -> None:
    with pytest.raises(ValueError, match="zone eu-west-1a is not in region us-west-2") as refused:
        AwsSeed(
            cluster_name="bad",
            zones=("us-west-2a", "eu-west-1a"),
            node_groups=(NodeGroupSeed("a", ami_release="v19990101", imds_v1_fraction=2.0),),
        )

    assert "release v19990101 is not seeded" in str(refused.value)
    assert "imds_v1_fraction 2.0" in str(refused.value)


def test_the_bot_reaches_the_emulator_through_the_standard_aws_environment(
    aws: AwsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in aws.client_env().items():
        monkeypatch.setenv(name, value)

    # No endpoint or credentials passed: boto3 finds them the way the bot's adapter does.
    eks = boto3.client("eks")

    assert eks.list_clusters()["clusters"] == ["small"]


def test_the_cve_catalog_files_every_vulnerability_under_its_own_severity_once() -> None:
    for family, by_severity in CATALOG.items():
        for severity, vulnerabilities in by_severity.items():
            assert {v.severity for v in vulnerabilities} <= {severity}, (family, severity)
            assert len({v.cve for v in vulnerabilities}) == len(vulnerabilities), (family, severity)
