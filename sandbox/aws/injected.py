"""Everything the emulator writes into moto's in-process backends instead of through its HTTP API.

moto's server runs in this process, so its backend objects are ordinary Python objects here. We use
them only for what its API refuses or cannot express — each function says which — and keep all of
that in this one module so a moto upgrade has one place to check. Everything else is seeded through
boto3 over the wire, like the bot talks to it.
"""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.core.base_backend import BackendDict
from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import Instance
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix, random_ami_id
from moto.eks.models import eks_backends
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends
from moto.inspector2.models import inspector2_backends
from moto.ssm.models import Parameter, ssm_backends
from moto.utilities.utils import get_partition

# Every service the emulator touches; forget_account() drops the account from each.
_BACKENDS: tuple[BackendDict[Any], ...] = (
    ec2_backends,
    eks_backends,
    autoscaling_backends,
    iam_backends,
    ssm_backends,
    inspector2_backends,
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def account_credentials(account_id: str) -> Credentials:
    """An access key moto maps to `account_id`.

    moto keeps one global state per process and picks the account of a request from its access key
    (keys it issued belong to the account that issued them; any other key lands in 123456789012).
    Issuing a key per emulator lets several emulators share a process without seeing each other's
    instances. A temporary (ASIA…) key, because it belongs to no IAM user: the account's IAM stays
    exactly what the scenario seeded.
    """
    iam = iam_backends[account_id][get_partition("")]
    key = iam.create_temp_access_key()
    return Credentials(access_key_id=key.access_key_id, secret_access_key=key.secret_access_key)


def tune_ec2_backend(account_id: str, region: str) -> None:
    """Make moto's EC2 fast enough for the `scale` scenario (thousands of instances), same answers.

    Three costs grow with the account, measured with 1,000-5,000 instances on moto 5.2.5:
    - moto preloads ~1,300 public AMIs per region, and every RunInstances matches the launched
      image against all of them with its generic filter code. The sandbox publishes the AMIs its
      nodes use (register_public_ami), so the preloaded ones go: DescribeImages then shows exactly
      the scenario's EKS and Bottlerocket AMIs.
    - every instance, volume or security group serialized looks its tags up with
      describe_tags(resource-id=…), which scans the tags of every resource in the account:
      quadratic — DescribeInstances over 1,000 instances took 18 s. This backend answers an exact
      single resource-id lookup from its tag index directly and leaves every other query to moto.
    - get_instance scans every reservation: a third of the time seeding 5,000 instances.
    The changes apply to this account's backend object only; other moto users in the process keep
    moto as it is.
    """
    ec2 = ec2_backends[account_id][region]
    preloaded = set(ec2.amis)
    for ami_id in preloaded:
        del ec2.amis[ami_id]
    for snapshot_id in [s.id for s in ec2.snapshots.values() if s.from_ami in preloaded]:
        del ec2.snapshots[snapshot_id]

    scan_all = ec2.describe_tags

    def describe_tags(filters: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        wanted = (filters or {}).get("resource-id", [])
        # Anything but one exact id (AWS filter wildcards included) is moto's own scan.
        if filters is None or len(filters) != 1 or len(wanted) != 1 or any(c in wanted[0] for c in "*?[\\"):
            return scan_all(filters)
        resource_id = wanted[0]
        resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        # .get, not [...]: the index is a defaultdict and a lookup must not add an empty entry.
        return [
            {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in list(ec2.tags.get(resource_id, {}).items())
        ]

    ec2.describe_tags = describe_tags  # type: ignore[method-assign]

    # get_instance walks every reservation for each lookup (AttachInstances, profile association…).
    # moto never drops a reservation, so an index rebuilt on a miss always answers what it would.
    index: dict[str, Instance] = {}

    def get_instance(instance_id: str) -> Instance:
        found = index.get(instance_id)
        if found is None:
            index.update({i.id: i for i in ec2.all_instances()})
            found = index.get(instance_id)
        if found is None:
            raise InvalidInstanceIdError(instance_id)
        return found

    ec2.get_instance = get_instance  # type: ignore[method-assign]


def register_public_ami(
    account_id: str,
    region: str,
    *,
    name: str,
    description: str,
    owner_id: str,
    creation_date: datetime.datetime,
) -> str:
    """Register an Amazon-owned public AMI; returns its id.

    RegisterImage over the API makes the caller the owner and ignores architecture, root device and
    virtualization type; the real EKS and Bottlerocket AMIs belong to Amazon's publishing accounts
    (owner alias "amazon"), are x86_64 HVM and boot from /dev/xvda.
    """
    ec2 = ec2_backends[account_id][region]
    ami_id = random_ami_id()
    ec2.amis[ami_id] = Ami(
        ec2,
        ami_id,
        name=name,
        description=description,
        owner_id=owner_id,
        owner_alias="amazon",
        public=True,
        virtualization_type="hvm",
        architecture="x86_64",
        root_device_type="ebs",
        root_device_name="/dev/xvda",
        creation_date=creation_date,
        hypervisor="xen",
        boot_mode="legacy-bios",
        region_name=f"{region}a",
    )
    return ami_id


def put_public_parameter(account_id: str, region: str, name: str, value: str) -> None:
    """Publish an SSM parameter under /aws/service/….

    PutParameter answers AccessDeniedException for reserved /aws paths (as AWS does), and moto ships
    only the Amazon Linux and ECS AMI trees, none of EKS's or Bottlerocket's.
    """
    ssm = ssm_backends[account_id][region]
    versions = ssm._parameters[name]
    versions.append(
        # Parameter's abstract CloudFormation hooks are unused here; moto builds it the same way.
        Parameter(  # type: ignore[abstract]
            account_id=account_id,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=datetime.datetime.now(datetime.UTC),
            version=len(versions) + 1,
            data_type="aws:ec2:image" if name.endswith("/image_id") else "text",
        )
    )


@functools.cache
def _managed_policy_documents() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(aws_managed_policies_data)
    return parsed


def ensure_aws_managed_policies(account_id: str, names: tuple[str, ...]) -> list[str]:
    """Make AWS-managed policies attachable in this account; returns their ARNs.

    moto loads its copy of the AWS-managed policies only when MOTO_IAM_LOAD_MANAGED_POLICIES is set
    in the environment, which we must not require; we load just the ones the scenario attaches, from
    the same bundled data, so their documents are AWS's.
    """
    partition = get_partition("")
    iam = iam_backends[account_id][partition]
    documents = _managed_policy_documents()
    arns: list[str] = []
    for name in names:
        if name not in documents:
            raise ValueError(f"AWS-managed policy {name} is not in moto's bundled copy of AWS's policies")
        policy = AWSManagedPolicy.from_data(name, account_id, partition, documents[name])
        iam.managed_policies.setdefault(policy.arn, policy)
        arns.append(policy.arn)
    return arns


def associate_instance_profile(
    account_id: str, region: str, instance_ids: list[str], profile_arn: str
) -> None:
    """Give every instance of a RunInstances call the instance profile it was launched with.

    moto 5.2's RunInstances associates IamInstanceProfile with the first instance of the
    reservation only; AWS gives it to all of them. (AssociateIamInstanceProfile over the API would
    do too, at one request per instance — thousands in the `scale` scenario.)
    """
    ec2 = ec2_backends[account_id][region]
    for instance_id in instance_ids:
        if instance_id not in ec2.iam_instance_profile_associations:
            ec2.associate_iam_instance_profile(instance_id=instance_id, iam_instance_profile_arn=profile_arn)


def link_nodegroup_to_asg(account_id: str, region: str, cluster: str, nodegroup: str) -> str:
    """Give a managed node group the Auto Scaling group name EKS would; returns it.

    moto's CreateNodegroup invents `resources.autoScalingGroups = [eks-<uuid>]` (and a remote-access
    security group id) without creating either. We create the ASG ourselves under EKS's real naming,
    eks-<nodegroup>-<uuid>, and point the node group at it; the invented security group is dropped
    because node groups with a launch template have none.
    """
    group = eks_backends[account_id][region].clusters[cluster].nodegroups[nodegroup]
    asg_name = f"eks-{nodegroup}-{group.uuid}"
    group.resources = {"autoScalingGroups": [{"name": asg_name}]}
    # moto fills remoteAccess with a made-up key pair when none is given; with a launch template
    # EKS reports none (SSH, if any, is the template's KeyName and security groups).
    group.remote_access = None  # type: ignore[assignment]
    return asg_name


def forget_account(account_id: str) -> None:
    """Drop everything moto holds for the account, so a stopped emulator frees its memory."""
    for backend in _BACKENDS:
        backend.pop(account_id, None)
