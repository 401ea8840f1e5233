"""The sandbox's AWS after seeding a demo-like scenario, read the way the bot reads it: real boto3
clients over HTTP against the emulator's endpoint.

One emulator is seeded for the module and only read here; tests that change AWS live in
test_aws_runtime.py with emulators of their own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.aws import (
    AmiFamily,
    AwsEmulator,
    AwsSeed,
    KarpenterPoolSeed,
    NodeGroupSeed,
    SeedResult,
    Severity,
)

CLUSTER = "demo"
DEMO = AwsSeed(
    cluster_name=CLUSTER,
    zones=("us-west-2a", "us-west-2b"),
    node_groups=(
        NodeGroupSeed("shop", desired=8, imds_v1_fraction=0.25, ssh_open=True),
        NodeGroupSeed("payments", desired=8, ebs_encrypted=False),
        NodeGroupSeed("batch", desired=8, instance_type="c5.xlarge", imds_v1_fraction=1.0),
    ),
    karpenter_pools=(KarpenterPoolSeed("general", "al2", count=2),),
    node_role_inline_policies=(
        (
            "node-logs",
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", '
            '"Resource": "arn:aws:logs:{region}:{account}:log-group:/aws/eks/{cluster}/nodes:*"}]}',
        ),
    ),
)


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[AwsEmulator, SeedResult]]:
    with AwsEmulator() as aws:
        yield aws, aws.seed(DEMO)


@pytest.fixture(scope="module")
def clients(demo: tuple[AwsEmulator, SeedResult]) -> dict[str, Any]:
    aws, _ = demo
    return {
        name: boto3.client(name, **aws.client_kwargs())  # type: ignore[call-overload]
        for name in ("ec2", "eks", "autoscaling", "iam", "ssm", "inspector2")
    }


def _instances(ec2: Any, **kwargs: Any) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_instances").paginate(**kwargs)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_every_seeded_node_is_a_running_instance_tagged_with_its_group_and_cluster(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    instances = {i["InstanceId"]: i for i in _instances(clients["ec2"])}

    assert set(instances) == {n.instance_id for n in seeded.nodes}
    assert len(instances) == 26
    for node in seeded.nodes:
        instance, tags = instances[node.instance_id], _tags(instances[node.instance_id])
        assert instance["State"]["Name"] == "running"
        assert tags[f"kubernetes.io/cluster/{CLUSTER}"] == "owned"
        assert tags["Name"]
        if node.node_group:
            assert tags["eks:nodegroup-name"] == node.node_group
            assert tags["eks:cluster-name"] == CLUSTER
        else:
            assert tags["karpenter.sh/nodepool"] == "general"
            assert tags["karpenter.k8s.aws/ec2nodeclass"] == "al2"
            assert tags["Name"] == node.name


def test_metadata_options_carry_the_seeded_share_of_imdsv1(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    instances = _instances(clients["ec2"])
    tokens = Counter(
        (_tags(i).get("eks:nodegroup-name", "karpenter"), i["MetadataOptions"]["HttpTokens"])
        for i in instances
    )

    assert tokens == {
        ("shop", "optional"): 2,
        ("shop", "required"): 6,
        ("payments", "required"): 8,
        ("batch", "optional"): 8,
        ("karpenter", "required"): 2,
    }
    by_id = {n.instance_id: n for n in seeded.nodes}
    for instance in instances:
        assert instance["MetadataOptions"]["HttpTokens"] == by_id[instance["InstanceId"]].http_tokens
        # Managed node groups allow a hop for pods; Karpenter's EC2NodeClass default is 1.
        hops = 1 if by_id[instance["InstanceId"]].nodepool else 2
        assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == hops


def test_instances_boot_from_amazon_owned_eks_amis_with_real_names(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    image_ids = {i["ImageId"] for i in _instances(clients["ec2"])}
    images = clients["ec2"].describe_images(ImageIds=sorted(image_ids))["Images"]

    assert [i["Name"] for i in images] == ["amazon-eks-node-1.31-v20241024"]
    assert images[0]["ImageOwnerAlias"] == "amazon"
    assert images[0]["OwnerId"] == "602401143452"
    assert images[0]["Architecture"] == "x86_64"
    bottlerocket = clients["ec2"].describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": ["bottlerocket-aws-k8s-1.31-x86_64-*"]}]
    )["Images"]
    assert sorted(i["Name"][: len("bottlerocket-aws-k8s-1.31-x86_64-v1.26.2")] for i in bottlerocket) == [
        "bottlerocket-aws-k8s-1.31-x86_64-v1.26.1",
        "bottlerocket-aws-k8s-1.31-x86_64-v1.26.2",
    ]


def test_node_records_give_kubernetes_its_node_names_and_provider_ids(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    instances = {i["InstanceId"]: i for i in _instances(clients["ec2"])}

    for node in seeded.nodes:
        instance = instances[node.instance_id]
        assert re.fullmatch(r"ip-10-0-\d+-\d+\.us-west-2\.compute\.internal", node.name)
        assert node.name == instance["PrivateDnsName"]
        assert node.private_ip == instance["PrivateIpAddress"]
        assert node.zone == instance["Placement"]["AvailabilityZone"]
        assert node.provider_id == f"aws:///{node.zone}/{node.instance_id}"
        assert node.os.os_image == "Amazon Linux 2"
    assert Counter(n.zone for n in seeded.nodes_of_group("shop")) == {"us-west-2a": 4, "us-west-2b": 4}


def test_eks_describes_the_cluster_and_each_node_group_with_its_auto_scaling_group(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    eks, autoscaling = clients["eks"], clients["autoscaling"]

    cluster = eks.describe_cluster(name=CLUSTER)["cluster"]
    assert (cluster["status"], cluster["version"]) == ("ACTIVE", "1.31")
    assert sorted(eks.list_nodegroups(clusterName=CLUSTER)["nodegroups"]) == ["batch", "payments", "shop"]

    for name in ("shop", "payments", "batch"):
        group = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName=name)["nodegroup"]
        assert group["scalingConfig"]["desiredSize"] == 8
        assert group["amiType"] == "AL2_x86_64"
        assert group["releaseVersion"] == "1.31.0-20241024"
        assert "remoteAccess" not in group
        (asg_name,) = [a["name"] for a in group["resources"]["autoScalingGroups"]]
        assert asg_name.startswith(f"eks-{name}-")
        (asg,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])[
            "AutoScalingGroups"
        ]
        assert asg["DesiredCapacity"] == 8
        assert {i["InstanceId"] for i in asg["Instances"]} == {
            n.instance_id for n in seeded.nodes_of_group(name)
        }
        assert _tags(asg)["eks:nodegroup-name"] == name
        assert _tags(asg)[f"kubernetes.io/cluster/{CLUSTER}"] == "owned"


def test_only_the_ssh_open_group_lets_the_internet_in_on_port_22(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    ec2 = clients["ec2"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [seeded.vpc_id]}])[
        "SecurityGroups"
    ]
    open_22 = [
        g["GroupId"]
        for g in groups
        for p in g["IpPermissions"]
        if p.get("FromPort") == 22 and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
    ]

    assert open_22 == [seeded.node_groups["shop"].security_group_id]
    key_names = {
        _tags(i)["eks:nodegroup-name"]: i.get("KeyName")
        for i in _instances(ec2)
        if "eks:nodegroup-name" in _tags(i)
    }
    assert key_names == {"shop": "demo-ops", "payments": None, "batch": None}


def test_karpenter_discovers_its_security_group_and_subnets_by_tag(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    discovery = [{"Name": "tag:karpenter.sh/discovery", "Values": [CLUSTER]}]

    groups = clients["ec2"].describe_security_groups(Filters=discovery)["SecurityGroups"]
    subnets = clients["ec2"].describe_subnets(Filters=discovery)["Subnets"]

    assert [g["GroupId"] for g in groups] == [seeded.karpenter_security_group_id]
    assert {s["AvailabilityZone"]: s["SubnetId"] for s in subnets} == dict(seeded.subnets)


def test_root_volumes_are_encrypted_except_where_the_scenario_says_not(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    volumes = clients["ec2"].describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [n.instance_id for n in seeded.nodes]}]
    )["Volumes"]
    group_of = {n.instance_id: n.node_group or "karpenter" for n in seeded.nodes}

    encrypted = Counter((group_of[v["Attachments"][0]["InstanceId"]], v["Encrypted"]) for v in volumes)
    assert encrypted == {
        ("shop", True): 8,
        ("payments", False): 8,
        ("batch", True): 8,
        ("karpenter", True): 2,
    }
    assert {v["Attachments"][0]["Device"] for v in volumes} == {"/dev/xvda"}


def test_nodes_run_with_the_node_role_and_its_four_eks_policies(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    iam = clients["iam"]
    role_name = seeded.node_role_arn.rsplit("/", 1)[1]

    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    profile = iam.get_instance_profile(InstanceProfileName=seeded.instance_profile_arn.rsplit("/", 1)[1])

    assert sorted(p["PolicyArn"] for p in attached) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]
    assert [r["Arn"] for r in profile["InstanceProfile"]["Roles"]] == [seeded.node_role_arn]
    worker = iam.get_policy_version(
        PolicyArn="arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        VersionId=iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy")["Policy"][
            "DefaultVersionId"
        ],
    )["PolicyVersion"]["Document"]
    assert "ec2:DescribeInstances" in str(worker)
    for instance in _instances(clients["ec2"]):
        assert instance["IamInstanceProfile"]["Arn"] == seeded.instance_profile_arn


def test_the_node_role_carries_the_seeds_inline_policies_with_this_accounts_arns(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    iam = clients["iam"]
    role_name = seeded.node_role_arn.rsplit("/", 1)[1]
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["node-logs"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="node-logs")["PolicyDocument"]
    (statement,) = document["Statement"]
    assert statement["Resource"] == (
        f"arn:aws:logs:us-west-2:{seeded.account_id}:log-group:/aws/eks/{CLUSTER}/nodes:*"
    )


def test_ssm_public_parameters_name_the_latest_and_pinned_amis(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    ssm = clients["ssm"]

    def value(name: str) -> str:
        parameter: str = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        return parameter

    latest = value("/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id")
    (image,) = clients["ec2"].describe_images(ImageIds=[latest])["Images"]
    assert image["Name"].startswith("bottlerocket-aws-k8s-1.31-x86_64-v1.26.2-")
    assert image["OwnerId"] == "092701018921"
    assert value("/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_version").startswith("1.26.2-")
    pinned = value("/aws/service/bottlerocket/aws-k8s-1.31/x86_64/1.26.1/image_id")
    assert pinned == seeded.ami(AmiFamily.BOTTLEROCKET, "1.26.1").image_id != latest
    recommended = value("/aws/service/eks/optimized-ami/1.31/amazon-linux-2/recommended/image_id")
    assert recommended == seeded.ami(AmiFamily.AL2).image_id
    assert value("/aws/service/eks/optimized-ami/1.31/amazon-linux-2/recommended/release_version") == (
        "1.31.0-20241024"
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        ssm.put_parameter(Name="/aws/service/bottlerocket/mine", Value="x", Type="String")


def test_inspector_findings_of_one_instance_come_back_by_severity(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    aws, seeded = demo
    inspector = clients["inspector2"]
    node = seeded.nodes_of_group("payments")[0]
    by_instance = {"resourceId": [{"comparison": "EQUALS", "value": node.instance_id}]}

    pages = inspector.get_paginator("list_findings").paginate(
        filterCriteria=by_instance, PaginationConfig={"PageSize": 3}
    )
    findings = [f for page in pages for f in page["findings"]]

    assert Counter(f["severity"] for f in findings) == {"CRITICAL": 1, "HIGH": 3, "MEDIUM": 3, "LOW": 1}
    assert {f["resources"][0]["id"] for f in findings} == {node.instance_id}
    assert len({f["findingArn"] for f in findings}) == 8
    assert aws.active_finding_counts(node.instance_id) == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 3,
        Severity.MEDIUM: 3,
        Severity.LOW: 1,
    }
    finding = findings[0]
    assert finding["type"] == "PACKAGE_VULNERABILITY"
    assert re.fullmatch(r"CVE-\d{4}-\d+", finding["packageVulnerabilityDetails"]["vulnerabilityId"])
    assert finding["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"]
    assert finding["resources"][0]["details"]["awsEc2Instance"]["imageId"] == node.image_id

    critical = inspector.list_findings(
        filterCriteria={**by_instance, "severity": [{"comparison": "EQUALS", "value": "CRITICAL"}]},
        sortCriteria={"field": "SEVERITY", "sortOrder": "DESC"},
    )["findings"]
    assert [f["severity"] for f in critical] == ["CRITICAL"]
    everything = [f for page in inspector.get_paginator("list_findings").paginate() for f in page["findings"]]
    assert len(everything) == 26 * 8


def test_inspector_refuses_filters_it_does_not_understand(clients: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as refused:
        clients["inspector2"].list_findings(
            filterCriteria={"lambdaFunctionName": [{"comparison": "EQUALS", "value": "f"}]}
        )

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "lambdaFunctionName" in refused.value.response["Error"]["Message"]


def test_inspector_coverage_lists_every_instance_as_scanned(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    inspector = clients["inspector2"]

    pages = inspector.get_paginator("list_coverage").paginate(PaginationConfig={"PageSize": 10})
    covered = [c for page in pages for c in page["coveredResources"]]
    one = inspector.list_coverage(
        filterCriteria={"resourceId": [{"comparison": "EQUALS", "value": seeded.nodes[0].instance_id}]}
    )["coveredResources"]

    assert {c["resourceId"] for c in covered} == {n.instance_id for n in seeded.nodes}
    assert {c["scanStatus"]["statusCode"] for c in covered} == {"ACTIVE"}
    assert [c["resourceMetadata"]["ec2"]["amiId"] for c in one] == [seeded.nodes[0].image_id]
    status = inspector.batch_get_account_status(accountIds=[seeded.account_id])["accounts"][0]
    assert status["resourceState"]["ec2"]["status"] == "ENABLED"


def test_another_emulator_in_the_same_process_sees_none_of_this_one(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    with AwsEmulator() as other:
        ec2 = boto3.client("ec2", **other.client_kwargs())  # type: ignore[call-overload]
        assert _instances(ec2) == []
        assert other.account_id != demo[0].account_id
    assert len(_instances(clients["ec2"])) == 26


def test_tag_lookups_by_exact_id_agree_with_wildcard_queries(
    demo: tuple[AwsEmulator, SeedResult], clients: dict[str, Any]
) -> None:
    _, seeded = demo
    instance_id = seeded.nodes[0].instance_id

    def tags(resource_filter: str) -> list[tuple[str, str, str]]:
        found = clients["ec2"].describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_filter]}])[
            "Tags"
        ]
        return sorted((t["ResourceId"], t["Key"], t["Value"]) for t in found)

    exact = tags(instance_id)
    assert exact == tags(instance_id[:-1] + "?")
    assert "Name" in {key for _, key, _ in exact}
    assert {rid for rid, _, _ in exact} == {instance_id}
