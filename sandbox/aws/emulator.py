"""AWS behind the sandbox: moto's server, seeded from a scenario, driven by the Kubernetes emulation.

Everything is created through boto3 against the emulator's own endpoint — the same wire the bot
uses — except the few things moto's API refuses (injected.py) and the Inspector2 reads moto cannot
answer (inspector.py).

The methods block on HTTP; an asyncio caller (the Kubernetes emulation) runs them in a thread
(`await asyncio.to_thread(aws.launch_instance, ...)`). They are thread-safe.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import boto3
from botocore.config import Config

from sandbox.aws import amis, injected
from sandbox.aws.amis import AmiRecord
from sandbox.aws.inspector import FindingsStore, InspectorApi, ScannedInstance, policy_problems
from sandbox.aws.records import HttpTokens, NodeGroupRecord, NodeInstance, ScaleResult, SeedResult
from sandbox.aws.seed import AmiFamily, AwsSeed, KarpenterPoolSeed, NodeGroupSeed, Severity
from sandbox.aws.server import MotoHttpServer

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_ec2.type_defs import BlockDeviceMappingTypeDef, InstanceTypeDef, TagSpecificationTypeDef
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_inspector2 import Inspector2Client
    from mypy_boto3_ssm import SSMClient

    from sandbox.aws.inspector import Finding

# moto's default account: requests signed with a key moto did not issue land here. An emulator on
# this account therefore answers a bot configured with any credentials at all (the CLI's case).
ANY_CREDENTIALS_ACCOUNT_ID = "123456789012"

# Every EKS node role needs these (EKS user guide, "Amazon EKS node IAM role"); SSM for Session
# Manager access, which EKS best practices recommend over SSH.
NODE_ROLE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
)
CLUSTER_ROLE_POLICIES = ("AmazonEKSClusterPolicy",)

_EKS_CLUSTER_SG_DESCRIPTION = (
    "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, "
    "as well as any managed workloads."
)
_AL2_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==MIGRATEBOT=="

--==MIGRATEBOT==
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
set -ex
# Log shippers watch many files; AL2's default inotify limit is too low for them.
echo 'fs.inotify.max_user_watches=524288' > /etc/sysctl.d/99-inotify.conf
sysctl --system
yum install -y amazon-cloudwatch-agent
--==MIGRATEBOT==--
"""
_BOTTLEROCKET_USER_DATA = """[settings.kubernetes]
cluster-name = "{cluster}"

[settings.host-containers.admin]
enabled = false

[settings.host-containers.control]
enabled = true

[settings.kernel]
lockdown = "integrity"
"""


class UnknownInstanceError(LookupError):
    """The instance id names no instance this emulator launched."""


@dataclass(frozen=True)
class _LaunchSpec:
    """One instance to launch; equal specs share one RunInstances call."""

    zone: str
    http_tokens: HttpTokens
    hop_limit: int
    ami: AmiRecord
    instance_type: str
    ebs_encrypted: bool
    key_name: str | None
    security_group_ids: tuple[str, ...]
    launch_template_id: str | None
    tags: tuple[tuple[str, str], ...]
    node_group: str | None = None
    nodepool: str | None = None
    nodeclass: str | None = None
    nodeclaim: str | None = None


@dataclass
class _NodeGroupState:
    record: NodeGroupRecord
    seed: NodeGroupSeed
    min_size: int
    max_size: int
    # What the group's launch template says; instances the ASG adds later follow it.
    template_http_tokens: HttpTokens


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AwsEmulator:
    """moto's server on 127.0.0.1:<ephemeral port>, an isolated account in it, and seeding on top.

    `account_id` None gives the emulator an account of its own (emulators sharing a process, as
    tests do, then never see each other); ANY_CREDENTIALS_ACCOUNT_ID lets a bot with arbitrary
    credentials in.
    """

    def __init__(
        self,
        region: str = "us-west-2",
        *,
        account_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        self.region = region
        self.account_id = account_id or _fresh_account_id()
        # Timestamps the emulator writes itself (Inspector observation times); the sandbox passes
        # its scaled clock so they agree with the Kubernetes side's emulated time.
        self._clock = clock
        self._findings = FindingsStore(random_seed=0)
        self._server = MotoHttpServer(lambda app: InspectorApi(app, self._findings), host=host, port=port)
        self.credentials = injected.account_credentials(self.account_id)
        injected.tune_ec2_backend(self.account_id, region)
        session = boto3.session.Session(
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            region_name=region,
        )
        # Errors should surface at once; the emulator is local and never throttles.
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        url = self._server.url
        self._ec2: EC2Client = session.client("ec2", endpoint_url=url, config=config)
        self._eks: EKSClient = session.client("eks", endpoint_url=url, config=config)
        self._asg: AutoScalingClient = session.client("autoscaling", endpoint_url=url, config=config)
        self._iam: IAMClient = session.client("iam", endpoint_url=url, config=config)
        self._ssm: SSMClient = session.client("ssm", endpoint_url=url, config=config)
        self._inspector: Inspector2Client = session.client("inspector2", endpoint_url=url, config=config)
        self._lock = threading.RLock()
        self._seed: AwsSeed | None = None
        self._seeded: SeedResult | None = None
        self._instances: dict[str, NodeInstance] = {}
        self._terminated: dict[str, datetime.datetime] = {}
        self._node_groups: dict[str, _NodeGroupState] = {}
        self._stopped = False

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self._server.url

    def client_kwargs(self) -> dict[str, str]:
        """Arguments for boto3.client(service, **kwargs) that reach this emulator's account."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.credentials.access_key_id,
            "aws_secret_access_key": self.credentials.secret_access_key,
        }

    def client_env(self) -> dict[str, str]:
        """Environment for a process (the bot) whose boto3 should use this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
        }

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        injected.forget_account(self.account_id)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- seeding ----------------------------------------------------------------------------

    @property
    def seeded(self) -> SeedResult:
        if self._seeded is None:
            raise RuntimeError("the AWS emulator has not been seeded yet: call seed(AwsSeed(...)) first")
        return self._seeded

    def seed(self, seed: AwsSeed) -> SeedResult:
        """Create the scenario's AWS side; once per emulator."""
        with self._lock:
            if self._seed is not None:
                raise RuntimeError(
                    f"the AWS emulator is already seeded with cluster {self._seed.cluster_name}"
                )
            if seed.region != self.region:
                raise ValueError(f"seed region {seed.region} differs from the emulator's {self.region}")
            problems = policy_problems(AmiFamily.AL2, seed.findings.al2) + policy_problems(
                AmiFamily.BOTTLEROCKET, seed.findings.bottlerocket
            )
            if problems:
                raise ValueError("invalid findings policy: " + "; ".join(problems))
            self._seed = seed
            self._findings.reseed(seed.random_seed)
            # AWS defaults accountIds to the caller's; moto 5.2 answers 500 without it.
            self._inspector.enable(resourceTypes=["EC2"], accountIds=[self.account_id])
            ami_records = self._publish_amis(seed)
            cluster_role_arn, node_role_arn, profile_arn = self._create_iam(seed)
            vpc_id, subnets = self._create_network(seed)
            cluster_sg, karpenter_sg = self._create_cluster_security_groups(seed, vpc_id)
            cluster = self._eks.create_cluster(
                name=seed.cluster_name,
                version=seed.kubernetes_version,
                roleArn=cluster_role_arn,
                resourcesVpcConfig={
                    "subnetIds": list(subnets.values()),
                    "securityGroupIds": [cluster_sg],
                    "endpointPrivateAccess": True,
                    "endpointPublicAccess": True,
                },
                tags={"karpenter.sh/discovery": seed.cluster_name},
            )["cluster"]
            key_name = None
            if any(g.ssh_open for g in seed.node_groups):
                key_name = f"{seed.cluster_name}-ops"
                self._ec2.create_key_pair(KeyName=key_name)
            self._seeded = SeedResult(
                account_id=self.account_id,
                region=self.region,
                cluster_name=seed.cluster_name,
                cluster_arn=cluster["arn"],
                cluster_endpoint=cluster["endpoint"],
                kubernetes_version=seed.kubernetes_version,
                vpc_id=vpc_id,
                subnets=subnets,
                cluster_security_group_id=cluster_sg,
                karpenter_security_group_id=karpenter_sg,
                node_role_arn=node_role_arn,
                instance_profile_arn=profile_arn,
                ssh_key_name=key_name,
                amis=tuple(ami_records),
                node_groups={},
                nodes=(),
            )
            nodes: list[NodeInstance] = []
            for group in seed.node_groups:
                nodes.extend(self._create_node_group(group))
            for pool in seed.karpenter_pools:
                nodes.extend(self._seed_karpenter_pool(pool))
            self._seeded = replace(
                self._seeded,
                node_groups={name: state.record for name, state in self._node_groups.items()},
                nodes=tuple(nodes),
            )
            return self._seeded

    def _publish_amis(self, seed: AwsSeed) -> list[AmiRecord]:
        records: list[AmiRecord] = []
        for family in AmiFamily:
            releases = seed.releases_of(family)
            for index, release in enumerate(releases):
                name = amis.ami_name(family, seed.kubernetes_version, release)
                description = amis.ami_description(family, seed.kubernetes_version, release)
                owner = amis.owner_of(family)
                image_id = injected.register_public_ami(
                    self.account_id,
                    self.region,
                    name=name,
                    description=description,
                    owner_id=owner,
                    creation_date=_release_date(family, release, index),
                )
                record = AmiRecord(image_id, name, family, release, owner, description)
                records.append(record)
                latest = index == len(releases) - 1
                for path, value in amis.public_parameters(
                    record, seed.kubernetes_version, latest=latest
                ).items():
                    injected.put_public_parameter(self.account_id, self.region, path, value)
        return records

    def _create_iam(self, seed: AwsSeed) -> tuple[str, str, str]:
        node_policies = injected.ensure_aws_managed_policies(
            self.account_id, NODE_ROLE_POLICIES + seed.extra_node_role_policies
        )
        cluster_policies = injected.ensure_aws_managed_policies(self.account_id, CLUSTER_ROLE_POLICIES)
        cluster_role = self._iam.create_role(
            RoleName=f"{seed.cluster_name}-cluster-role",
            AssumeRolePolicyDocument=_trust_policy("eks.amazonaws.com"),
            Description=f"EKS control plane role of {seed.cluster_name}",
        )["Role"]
        for arn in cluster_policies:
            self._iam.attach_role_policy(RoleName=cluster_role["RoleName"], PolicyArn=arn)
        node_role = self._iam.create_role(
            RoleName=f"{seed.cluster_name}-node-role",
            AssumeRolePolicyDocument=_trust_policy("ec2.amazonaws.com"),
            Description=f"Worker node role of {seed.cluster_name} (managed node groups and Karpenter)",
            Tags=[{"Key": f"kubernetes.io/cluster/{seed.cluster_name}", "Value": "owned"}],
        )["Role"]
        for arn in node_policies:
            self._iam.attach_role_policy(RoleName=node_role["RoleName"], PolicyArn=arn)
        filled = {"{account}": self.account_id, "{region}": seed.region, "{cluster}": seed.cluster_name}
        for name, document in seed.node_role_inline_policies:
            for placeholder, value in filled.items():
                document = document.replace(placeholder, value)
            self._iam.put_role_policy(
                RoleName=node_role["RoleName"], PolicyName=name, PolicyDocument=document
            )
        profile = self._iam.create_instance_profile(InstanceProfileName=f"{seed.cluster_name}-node")[
            "InstanceProfile"
        ]
        self._iam.add_role_to_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=node_role["RoleName"]
        )
        return cluster_role["Arn"], node_role["Arn"], profile["Arn"]

    def _create_network(self, seed: AwsSeed) -> tuple[str, dict[str, str]]:
        cluster_tag = f"kubernetes.io/cluster/{seed.cluster_name}"
        vpc_id = self._ec2.create_vpc(
            CidrBlock=seed.vpc_cidr,
            TagSpecifications=[_tags("vpc", {"Name": f"{seed.cluster_name}-vpc", cluster_tag: "shared"})],
        )["Vpc"]["VpcId"]
        self._ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        # Up to 8 private subnets of equal size: a /16 gives /19s, room for 8,000 nodes per zone.
        network = ipaddress.ip_network(seed.vpc_cidr)
        if len(seed.zones) > 8:
            raise ValueError(f"the sandbox carves at most 8 subnets out of {seed.vpc_cidr}")
        blocks = list(network.subnets(prefixlen_diff=3))
        subnets: dict[str, str] = {}
        for zone, block in zip(seed.zones, blocks, strict=False):
            subnets[zone] = self._ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=str(block),
                AvailabilityZone=zone,
                TagSpecifications=[
                    _tags(
                        "subnet",
                        {
                            "Name": f"{seed.cluster_name}-private-{zone}",
                            cluster_tag: "shared",
                            "kubernetes.io/role/internal-elb": "1",
                            # Karpenter's EC2NodeClass subnetSelectorTerms find subnets by this tag.
                            "karpenter.sh/discovery": seed.cluster_name,
                        },
                    )
                ],
            )["Subnet"]["SubnetId"]
        return vpc_id, subnets

    def _create_cluster_security_groups(self, seed: AwsSeed, vpc_id: str) -> tuple[str, str]:
        cluster_tag = f"kubernetes.io/cluster/{seed.cluster_name}"
        suffix = hashlib.sha256(seed.cluster_name.encode()).hexdigest()[:10]
        cluster_sg = self._ec2.create_security_group(
            GroupName=f"eks-cluster-sg-{seed.cluster_name}-{suffix}",
            Description=_EKS_CLUSTER_SG_DESCRIPTION,
            VpcId=vpc_id,
            TagSpecifications=[
                _tags(
                    "security-group",
                    {
                        "Name": f"eks-cluster-sg-{seed.cluster_name}-{suffix}",
                        "aws:eks:cluster-name": seed.cluster_name,
                        cluster_tag: "owned",
                    },
                )
            ],
        )["GroupId"]
        self._ec2.authorize_security_group_ingress(
            GroupId=cluster_sg,
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": cluster_sg}]}],
        )
        karpenter_sg = self._ec2.create_security_group(
            GroupName=f"{seed.cluster_name}-karpenter-node",
            Description=f"Nodes Karpenter launches for {seed.cluster_name}",
            VpcId=vpc_id,
            TagSpecifications=[
                _tags(
                    "security-group",
                    {
                        "Name": f"{seed.cluster_name}-karpenter-node",
                        # Karpenter's EC2NodeClass securityGroupSelectorTerms find it by this tag.
                        "karpenter.sh/discovery": seed.cluster_name,
                        cluster_tag: "owned",
                    },
                )
            ],
        )["GroupId"]
        self._ec2.authorize_security_group_ingress(
            GroupId=karpenter_sg,
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": cluster_sg}]}],
        )
        return cluster_sg, karpenter_sg

    def _create_node_group(self, group: NodeGroupSeed) -> list[NodeInstance]:
        seed, seeded = self._require_seed(), self.seeded
        cluster_tag = f"kubernetes.io/cluster/{seed.cluster_name}"
        zones = group.zones or seed.zones
        subnet_ids = tuple(seeded.subnets[z] for z in zones)
        sg_id = self._ec2.create_security_group(
            GroupName=f"{seed.cluster_name}-{group.name}-node",
            Description=f"Nodes of managed node group {group.name}",
            VpcId=seeded.vpc_id,
            TagSpecifications=[
                _tags(
                    "security-group",
                    {
                        "Name": f"{seed.cluster_name}-{group.name}-node",
                        cluster_tag: "owned",
                        "eks:nodegroup-name": group.name,
                    },
                )
            ],
        )["GroupId"]
        permissions: list[Any] = [
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": seeded.cluster_security_group_id}]}
        ]
        if group.ssh_open:
            permissions.append(
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "SSH for node debugging"}],
                }
            )
        self._ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=permissions)

        ami = seeded.ami(group.ami_family, group.ami_release)
        # The template answers the group's majority: a mostly-IMDSv1 group was built that way, the
        # few instances that differ were changed by hand afterwards.
        template_tokens: HttpTokens = "optional" if group.imds_v1_fraction >= 0.5 else "required"
        key_name = seeded.ssh_key_name if group.ssh_open else None
        user_data = (
            _AL2_USER_DATA
            if group.ami_family is AmiFamily.AL2
            else _BOTTLEROCKET_USER_DATA.format(cluster=seed.cluster_name)
        )
        template = self._ec2.create_launch_template(
            LaunchTemplateName=f"{seed.cluster_name}-{group.name}",
            LaunchTemplateData={
                "SecurityGroupIds": [seeded.cluster_security_group_id, sg_id],
                **({"KeyName": key_name} if key_name else {}),
                "MetadataOptions": {
                    "HttpTokens": template_tokens,
                    "HttpPutResponseHopLimit": 2,
                    "HttpEndpoint": "enabled",
                },
                "BlockDeviceMappings": _block_devices(group.ami_family, group.ebs_encrypted),  # type: ignore[typeddict-item]
                "UserData": base64.b64encode(user_data.encode()).decode(),
            },
        )["LaunchTemplate"]
        template_id = template["LaunchTemplateId"]

        max_size = group.max_size if group.max_size is not None else max(group.desired * 2, 1)
        nodegroup = self._eks.create_nodegroup(
            clusterName=seed.cluster_name,
            nodegroupName=group.name,
            nodeRole=seeded.node_role_arn,
            subnets=list(subnet_ids),
            scalingConfig={"minSize": group.min_size, "maxSize": max_size, "desiredSize": group.desired},
            amiType="AL2_x86_64" if group.ami_family is AmiFamily.AL2 else "BOTTLEROCKET_x86_64",
            releaseVersion=amis.release_version(group.ami_family, seed.kubernetes_version, ami.release),
            version=seed.kubernetes_version,
            capacityType="ON_DEMAND",
            instanceTypes=[group.instance_type],
            launchTemplate={"id": template_id, "version": "1"},
            labels={"eks.amazonaws.com/nodegroup": group.name},
            tags={cluster_tag: "owned"},
        )["nodegroup"]
        asg_name = injected.link_nodegroup_to_asg(self.account_id, self.region, seed.cluster_name, group.name)
        self._asg.create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
            MinSize=group.min_size,
            MaxSize=max_size,
            DesiredCapacity=0,
            VPCZoneIdentifier=",".join(subnet_ids),
            Tags=[
                {"Key": k, "Value": v, "PropagateAtLaunch": True}
                for k, v in self._node_group_tags(group.name).items()
            ],
        )
        state = _NodeGroupState(
            record=NodeGroupRecord(
                name=group.name,
                arn=nodegroup["nodegroupArn"],
                asg_name=asg_name,
                launch_template_id=template_id,
                security_group_id=sg_id,
                subnet_ids=subnet_ids,
                ami_family=group.ami_family,
                ami_release=ami.release,
            ),
            seed=group,
            min_size=group.min_size,
            max_size=max_size,
            template_http_tokens=template_tokens,
        )
        self._node_groups[group.name] = state

        # Seeded instances carry the exact IMDSv1 share the scenario asks for.
        rng = random.Random(f"{seed.random_seed}/nodegroup/{group.name}")
        v1_count = round(group.desired * group.imds_v1_fraction)
        v1_indexes = set(rng.sample(range(group.desired), v1_count))
        specs = [
            self._node_group_spec(state, zones[i % len(zones)], "optional" if i in v1_indexes else "required")
            for i in range(group.desired)
        ]
        launched = self._launch(specs)
        self._attach(asg_name, launched)
        return launched

    def _node_group_tags(self, group: str) -> dict[str, str]:
        cluster = self._require_seed().cluster_name
        # What EKS puts on a managed node group's Auto Scaling group and propagates to instances.
        return {
            "eks:cluster-name": cluster,
            "eks:nodegroup-name": group,
            f"kubernetes.io/cluster/{cluster}": "owned",
            "k8s.io/cluster-autoscaler/enabled": "true",
            f"k8s.io/cluster-autoscaler/{cluster}": "owned",
        }

    def _node_group_spec(self, state: _NodeGroupState, zone: str, http_tokens: HttpTokens) -> _LaunchSpec:
        seeded = self.seeded
        group = state.seed
        tags = {
            **self._node_group_tags(group.name),
            "Name": f"{seeded.cluster_name}-{group.name}-node",
            "aws:autoscaling:groupName": state.record.asg_name,
        }
        return _LaunchSpec(
            zone=zone,
            http_tokens=http_tokens,
            hop_limit=2,
            ami=seeded.ami(group.ami_family, state.record.ami_release),
            instance_type=group.instance_type,
            ebs_encrypted=group.ebs_encrypted,
            key_name=seeded.ssh_key_name if group.ssh_open else None,
            security_group_ids=(seeded.cluster_security_group_id, state.record.security_group_id),
            launch_template_id=state.record.launch_template_id,
            tags=tuple(sorted(tags.items())),
            node_group=group.name,
        )

    def _seed_karpenter_pool(self, pool: KarpenterPoolSeed) -> list[NodeInstance]:
        seed, seeded = self._require_seed(), self.seeded
        zones = pool.zones or seed.zones
        rng = random.Random(f"{seed.random_seed}/nodepool/{pool.nodepool}")
        v1_indexes = set(rng.sample(range(pool.count), round(pool.count * pool.imds_v1_fraction)))
        ami = seeded.ami(pool.ami_family, pool.ami_release)
        specs = [
            self._karpenter_spec(
                nodeclaim=f"{pool.nodepool}-{_short_hash(f'{seed.random_seed}/{pool.nodepool}/{i}')}",
                nodepool=pool.nodepool,
                nodeclass=pool.nodeclass,
                instance_type=pool.instance_type,
                zone=zones[i % len(zones)],
                ami=ami,
                http_tokens="optional" if i in v1_indexes else "required",
                ebs_encrypted=pool.ebs_encrypted,
                extra_tags={},
            )
            for i in range(pool.count)
        ]
        launched = self._launch(specs)
        self._name_instances(launched)
        return launched

    def _karpenter_spec(
        self,
        *,
        nodeclaim: str,
        nodepool: str,
        nodeclass: str,
        instance_type: str,
        zone: str,
        ami: AmiRecord,
        http_tokens: HttpTokens,
        ebs_encrypted: bool,
        extra_tags: Mapping[str, str],
    ) -> _LaunchSpec:
        seeded = self.seeded
        cluster = seeded.cluster_name
        # The tags Karpenter (v1) puts on what it launches; Name follows once the node has a name.
        tags = {
            **extra_tags,
            "karpenter.sh/nodepool": nodepool,
            "karpenter.sh/nodeclaim": nodeclaim,
            "karpenter.k8s.aws/ec2nodeclass": nodeclass,
            "karpenter.sh/managed-by": cluster,
            "eks:eks-cluster-name": cluster,
            f"kubernetes.io/cluster/{cluster}": "owned",
        }
        return _LaunchSpec(
            zone=zone,
            http_tokens=http_tokens,
            # EC2NodeClass's default metadataOptions: IMDSv2, hop limit 1 (pods cannot reach IMDS).
            hop_limit=1,
            ami=ami,
            instance_type=instance_type,
            ebs_encrypted=ebs_encrypted,
            key_name=None,
            security_group_ids=(seeded.karpenter_security_group_id,),
            launch_template_id=None,
            tags=tuple(sorted(tags.items())),
            nodepool=nodepool,
            nodeclass=nodeclass,
            nodeclaim=nodeclaim,
        )

    # --- launching --------------------------------------------------------------------------

    def _launch(self, specs: Sequence[_LaunchSpec]) -> list[NodeInstance]:
        """Launch one instance per spec, identical specs in one RunInstances call; in spec order."""
        seed, seeded = self._require_seed(), self.seeded
        batches: dict[_LaunchSpec, list[int]] = defaultdict(list)
        for index, spec in enumerate(specs):
            batches[spec].append(index)
        results: dict[int, tuple[NodeInstance, _LaunchSpec]] = {}
        for spec, indexes in batches.items():
            tags = dict(spec.tags)
            volume_tags = {
                k: v
                for k, v in tags.items()
                if k.startswith(("kubernetes.io/cluster/", "eks:", "karpenter.sh/"))
            }
            tag_specs: list[TagSpecificationTypeDef] = [_tags("instance", tags)]
            if volume_tags:
                tag_specs.append(_tags("volume", volume_tags))
            # Left out rather than sent empty: to EC2 an empty KeyName is a key name.
            optional: dict[str, Any] = {}
            if spec.key_name:
                optional["KeyName"] = spec.key_name
            if spec.launch_template_id:
                optional["LaunchTemplate"] = {"LaunchTemplateId": spec.launch_template_id, "Version": "1"}
            response = self._ec2.run_instances(
                ImageId=spec.ami.image_id,
                MinCount=len(indexes),
                MaxCount=len(indexes),
                InstanceType=cast("InstanceTypeType", spec.instance_type),
                SubnetId=seeded.subnets[spec.zone],
                SecurityGroupIds=list(spec.security_group_ids),
                IamInstanceProfile={"Arn": seeded.instance_profile_arn},
                MetadataOptions={
                    "HttpTokens": spec.http_tokens,
                    "HttpPutResponseHopLimit": spec.hop_limit,
                    "HttpEndpoint": "enabled",
                },
                BlockDeviceMappings=_block_devices(spec.ami.family, spec.ebs_encrypted),
                TagSpecifications=tag_specs,
                **optional,
            )
            injected.associate_instance_profile(
                self.account_id,
                self.region,
                [i["InstanceId"] for i in response["Instances"]],
                seeded.instance_profile_arn,
            )
            for index, instance in zip(indexes, response["Instances"], strict=True):
                results[index] = (self._record(spec, instance), spec)
        launched = [results[i][0] for i in range(len(specs))]
        for node, spec in results.values():
            tags = dict(spec.tags)
            if spec.nodeclaim is not None:
                tags["Name"] = node.name
            self._findings.scan(
                self._scanned(node, tags), seed.findings.counts_for(node.ami_family), self._clock()
            )
        with self._lock:
            for node in launched:
                self._instances[node.instance_id] = node
        return launched

    def _record(self, spec: _LaunchSpec, instance: InstanceTypeDef) -> NodeInstance:
        seed = self._require_seed()
        return NodeInstance(
            name=instance["PrivateDnsName"],
            instance_id=instance["InstanceId"],
            zone=instance["Placement"]["AvailabilityZone"],
            private_ip=instance["PrivateIpAddress"],
            subnet_id=instance["SubnetId"],
            instance_type=instance["InstanceType"],
            image_id=instance["ImageId"],
            ami_name=spec.ami.name,
            ami_family=spec.ami.family,
            ami_release=spec.ami.release,
            http_tokens=instance["MetadataOptions"]["HttpTokens"],
            ebs_encrypted=spec.ebs_encrypted,
            ssh_key_name=instance.get("KeyName"),
            launched_at=instance["LaunchTime"],
            os=amis.node_os_info(spec.ami.family, seed.kubernetes_version, spec.ami.release),
            node_group=spec.node_group,
            nodepool=spec.nodepool,
            nodeclass=spec.nodeclass,
            nodeclaim=spec.nodeclaim,
        )

    def _scanned(self, node: NodeInstance, tags: Mapping[str, str]) -> ScannedInstance:
        seeded = self.seeded
        return ScannedInstance(
            instance_id=node.instance_id,
            account_id=self.account_id,
            region=self.region,
            family=node.ami_family,
            image_id=node.image_id,
            instance_type=node.instance_type,
            private_ip=node.private_ip,
            subnet_id=node.subnet_id,
            vpc_id=seeded.vpc_id,
            launched_at=node.launched_at,
            key_name=node.ssh_key_name,
            instance_profile_arn=seeded.instance_profile_arn,
            tags=tuple(sorted(tags.items())),
        )

    def _attach(self, asg_name: str, nodes: Sequence[NodeInstance]) -> None:
        ids = [n.instance_id for n in nodes]
        # AttachInstances takes at most 20 instances per call.
        for start in range(0, len(ids), 20):
            self._asg.attach_instances(AutoScalingGroupName=asg_name, InstanceIds=ids[start : start + 20])

    # --- runtime operations (called by the Kubernetes emulation) -----------------------------

    def resolve_ami(self, selector: str) -> AmiRecord:
        """The AMI an EC2NodeClass selector names, resolved the way Karpenter does, over the wire.

        `selector` is an alias ("bottlerocket@v1.26.2", "al2@latest"), an SSM parameter path
        ("/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id") or an AMI id.
        """
        seed = self._require_seed()
        if selector.startswith("ami-"):
            image_id = selector
        else:
            path = selector
            if not selector.startswith("/"):
                alias = amis.parse_alias(selector)
                path = amis.image_id_parameter(alias.family, seed.kubernetes_version, alias.release)
            try:
                image_id = self._ssm.get_parameter(Name=path)["Parameter"]["Value"]
            except self._ssm.exceptions.ParameterNotFound as e:
                raise ValueError(f"AMI selector {selector!r}: SSM parameter {path} does not exist") from e
        for record in self.seeded.amis:
            if record.image_id == image_id:
                return record
        raise ValueError(
            f"AMI selector {selector!r} resolves to {image_id}, which the sandbox did not publish"
        )

    def launch_instance(
        self,
        *,
        nodeclaim: str,
        nodepool: str,
        nodeclass: str,
        instance_type: str,
        zone: str,
        ami: str,
        http_tokens: HttpTokens = "required",
        ebs_encrypted: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> NodeInstance:
        """Launch the instance behind a Karpenter NodeClaim and tag it with its node's name."""
        seeded = self.seeded
        if zone not in seeded.subnets:
            raise ValueError(
                f"zone {zone} has no subnet in cluster {seeded.cluster_name} ({sorted(seeded.subnets)})"
            )
        if http_tokens not in ("required", "optional"):
            raise ValueError(f"http_tokens must be 'required' or 'optional', not {http_tokens!r}")
        record = self.resolve_ami(ami)
        with self._lock:
            spec = self._karpenter_spec(
                nodeclaim=nodeclaim,
                nodepool=nodepool,
                nodeclass=nodeclass,
                instance_type=instance_type,
                zone=zone,
                ami=record,
                http_tokens=http_tokens,
                ebs_encrypted=ebs_encrypted,
                extra_tags=tags or {},
            )
            (node,) = self._launch([spec])
            self._name_instances([node])
            return node

    def _name_instances(self, nodes: Iterable[NodeInstance]) -> None:
        for node in nodes:
            self._ec2.create_tags(Resources=[node.instance_id], Tags=[{"Key": "Name", "Value": node.name}])

    def terminate_instance(self, instance_id: str) -> NodeInstance:
        """Terminate an instance; idempotent. A node group's instance leaves its group for good
        (desired capacity goes down by one, as `terminate-instance-in-auto-scaling-group
        --should-decrement-desired-capacity` does) instead of being replaced."""
        with self._lock:
            node = self.instance(instance_id)
            if instance_id in self._terminated:
                return node
            if node.node_group is not None:
                state = self._node_groups[node.node_group]
                desired = len(self.node_group_instances(node.node_group)) - 1
                if desired < state.min_size:
                    # Auto Scaling refuses to shrink a group below its minimum; whoever removes a
                    # node for good lowers the minimum first, as an operator would.
                    state.min_size = desired
                    self._asg.update_auto_scaling_group(
                        AutoScalingGroupName=state.record.asg_name, MinSize=desired
                    )
                self._asg.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
                )
                self._eks.update_nodegroup_config(
                    clusterName=self.seeded.cluster_name,
                    nodegroupName=node.node_group,
                    scalingConfig={
                        "minSize": state.min_size,
                        "maxSize": state.max_size,
                        "desiredSize": desired,
                    },
                )
            else:
                self._ec2.terminate_instances(InstanceIds=[instance_id])
            self._mark_terminated([node])
            return node

    def _mark_terminated(self, nodes: Iterable[NodeInstance]) -> None:
        now = self._clock()
        for node in nodes:
            self._terminated[node.instance_id] = now
            self._findings.close(node.instance_id, now)

    def scale_node_group(self, name: str, desired: int) -> ScaleResult:
        """Set a managed node group's desired size; returns the instances added and removed.

        New instances go to the zones with the fewest, like an Auto Scaling group rebalances; on
        scale-in the group's default termination policy picks from the zone with the most
        instances, the oldest first.
        """
        with self._lock:
            state = self._node_groups.get(name)
            if state is None:
                raise KeyError(f"no managed node group is named {name} (known: {sorted(self._node_groups)})")
            if not state.min_size <= desired <= state.max_size:
                raise ValueError(
                    f"node group {name}: desired size {desired} is outside its scaling limits "
                    f"[{state.min_size}, {state.max_size}]"
                )
            current = self.node_group_instances(name)
            self._eks.update_nodegroup_config(
                clusterName=self.seeded.cluster_name,
                nodegroupName=name,
                scalingConfig={"minSize": state.min_size, "maxSize": state.max_size, "desiredSize": desired},
            )
            launched: list[NodeInstance] = []
            terminated: list[NodeInstance] = []
            zones = list(state.seed.zones or self._require_seed().zones)
            if desired > len(current):
                per_zone = Counter(n.zone for n in current)
                specs = []
                for _ in range(desired - len(current)):
                    zone = min(zones, key=lambda z: (per_zone[z], zones.index(z)))
                    per_zone[zone] += 1
                    specs.append(self._node_group_spec(state, zone, state.template_http_tokens))
                launched = self._launch(specs)
                self._attach(state.record.asg_name, launched)
            elif desired < len(current):
                remaining = list(current)
                for _ in range(len(current) - desired):
                    per_zone = Counter(n.zone for n in remaining)
                    crowded = max(per_zone.values())
                    victim = min(
                        (n for n in remaining if per_zone[n.zone] == crowded),
                        key=lambda n: (n.launched_at, n.instance_id),
                    )
                    remaining.remove(victim)
                    terminated.append(victim)
                for victim in terminated:
                    self._asg.terminate_instance_in_auto_scaling_group(
                        InstanceId=victim.instance_id, ShouldDecrementDesiredCapacity=True
                    )
                self._mark_terminated(terminated)
            return ScaleResult(
                node_group=name,
                previous_desired=len(current),
                desired=desired,
                launched=tuple(launched),
                terminated=tuple(terminated),
            )

    # --- ground truth -----------------------------------------------------------------------

    def instance(self, instance_id: str) -> NodeInstance:
        with self._lock:
            try:
                return self._instances[instance_id]
            except KeyError:
                raise UnknownInstanceError(
                    f"no instance {instance_id} was launched by this emulator"
                ) from None

    def instances(self, *, include_terminated: bool = False) -> list[NodeInstance]:
        with self._lock:
            return [
                n
                for n in self._instances.values()
                if include_terminated or n.instance_id not in self._terminated
            ]

    def is_terminated(self, instance_id: str) -> bool:
        with self._lock:
            self.instance(instance_id)
            return instance_id in self._terminated

    def node_group_instances(self, name: str) -> list[NodeInstance]:
        return [n for n in self.instances() if n.node_group == name]

    def findings(self, instance_id: str | None = None) -> list[Finding]:
        """Inspector2 findings as stored (all statuses); None: every instance's."""
        return self._findings.findings(instance_id)

    def active_finding_counts(self, instance_id: str) -> dict[Severity, int]:
        counts = Counter(f.severity for f in self._findings.findings(instance_id) if f.status == "ACTIVE")
        return {severity: counts.get(severity, 0) for severity in Severity}

    def _require_seed(self) -> AwsSeed:
        if self._seed is None:
            raise RuntimeError("the AWS emulator has not been seeded yet: call seed(AwsSeed(...)) first")
        return self._seed


def _fresh_account_id() -> str:
    # A random 12-digit account per emulator; moto's default account stays for the CLI's use.
    while True:
        account = str(random.SystemRandom().randrange(10**11, 10**12))
        if account != ANY_CREDENTIALS_ACCOUNT_ID:
            return account


def _tags(resource_type: str, tags: Mapping[str, str]) -> TagSpecificationTypeDef:
    return {
        "ResourceType": resource_type,  # type: ignore[typeddict-item]
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


def _block_devices(family: AmiFamily, encrypted: bool) -> list[BlockDeviceMappingTypeDef]:
    if family is AmiFamily.AL2:
        # EKS AL2 node groups: one 20 GiB root volume that also holds images and pod data.
        return [{"DeviceName": "/dev/xvda", "Ebs": _ebs(20, encrypted)}]
    # Bottlerocket: a small OS volume and a data volume for images and pods (Karpenter's defaults).
    return [
        {"DeviceName": "/dev/xvda", "Ebs": _ebs(4, encrypted)},
        {"DeviceName": "/dev/xvdb", "Ebs": _ebs(20, encrypted)},
    ]


def _ebs(size: int, encrypted: bool) -> Any:
    return {"VolumeSize": size, "VolumeType": "gp3", "Encrypted": encrypted, "DeleteOnTermination": True}


def _trust_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _release_date(family: AmiFamily, release: str, index: int) -> datetime.datetime:
    # AL2 releases carry their build date (v20241024); Bottlerocket's are spaced like its cadence.
    match = re.fullmatch(r"v(\d{4})(\d{2})(\d{2})", release)
    if family is AmiFamily.AL2 and match:
        return datetime.datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=datetime.UTC)
    return datetime.datetime(2024, 9, 1, tzinfo=datetime.UTC) + datetime.timedelta(days=21 * index)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:5]
