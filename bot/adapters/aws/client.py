"""AwsAdapter: EKS node groups, EC2 instances and images, SSM public parameters.

The endpoint comes from boto3's own configuration chain (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EKS`,
the config file), so pointing the bot at the sandbox needs no code. Retries (botocore's "standard"
mode: exponential backoff with jitter on throttling, 5xx and connection errors) and timeouts are
decided once, here; whatever still fails is translated into bot.adapters.errors.
"""

from __future__ import annotations

import base64
import functools
import json
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from bot.adapters.errors import (
    AdapterError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PermanentError,
    TemporaryError,
    Unauthorized,
    report_error,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_eks.type_defs import NodegroupScalingConfigTypeDef
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_inspector2 import Inspector2Client
    from mypy_boto3_inspector2.type_defs import FilterCriteriaTypeDef
    from mypy_boto3_ssm import SSMClient

T = TypeVar("T")
JSON = dict[str, Any]

_NOT_FOUND = {"ResourceNotFoundException", "ParameterNotFound", "NotFoundException", "NoSuchEntity"}
_CONFLICT = {"ResourceInUseException", "ResourceInUse", "ConflictException", "IncorrectState"}
_FORBIDDEN = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
_UNAUTHORIZED = {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken"}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "ServerException",
}


def translate_client_error(error: botocore.exceptions.ClientError, what: str) -> AdapterError:
    err = error.response.get("Error", {})
    code = str(err.get("Code", ""))
    message = f"{what}: {code}: {err.get('Message', '')}".rstrip(": ")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _THROTTLED or (isinstance(status, int) and status >= 500):
        return TemporaryError(message, status=status, reason=code)
    if code in _NOT_FOUND or code.endswith(".NotFound") or code.startswith("InvalidInstanceID.Malformed"):
        return NotFound(message, status=status, reason=code)
    if code in _CONFLICT:
        return Conflict(message, status=status, reason=code)
    if code in _FORBIDDEN:
        return Forbidden(message, status=status, reason=code)
    if code in _UNAUTHORIZED:
        return Unauthorized(message, status=status, reason=code)
    if code.startswith("Invalid") or code.startswith("Validation") or status == 400:
        return Invalid(message, status=status, reason=code)
    return PermanentError(message, status=status, reason=code)


def translate(error: Exception, what: str) -> AdapterError:
    if isinstance(error, botocore.exceptions.ClientError):
        return translate_client_error(error, what)
    if isinstance(
        error,
        botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError,
    ):
        return TemporaryError(f"{what}: {error}")
    if isinstance(error, botocore.exceptions.NoCredentialsError | botocore.exceptions.NoRegionError):
        return PermanentError(f"{what}: {error}")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return PermanentError(f"{what}: {error}")
    return PermanentError(f"{what}: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class NodeGroup:
    cluster: str
    name: str
    status: str
    min_size: int
    max_size: int
    desired_size: int
    ami_type: str
    release_version: str
    labels: dict[str, str]


class AwsAdapter:
    """One region. `session` defaults to boto3's default chain (environment, profile, role)."""

    def __init__(
        self,
        region: str,
        *,
        session: boto3.session.Session | None = None,
        max_attempts: int = 5,
        retry_mode: Literal["standard", "adaptive"] = "standard",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        endpoint_url: str | None = None,
    ) -> None:
        """`endpoint_url` None → boto3's own resolution (AWS_ENDPOINT_URL, then AWS itself)."""
        self.region = region
        self._endpoint_url = endpoint_url
        self._session = session or boto3.session.Session(region_name=region)
        self._config = Config(
            region_name=region,
            retries={"mode": retry_mode, "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._eks: EKSClient = self._session.client("eks", config=self._config, endpoint_url=endpoint_url)
        self._ec2: EC2Client = self._session.client("ec2", config=self._config, endpoint_url=endpoint_url)
        self._ssm: SSMClient = self._session.client("ssm", config=self._config, endpoint_url=endpoint_url)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as e:
            raise report_error("aws", translate(e, what)) from e

    # ---- EKS ------------------------------------------------------------------------------------

    def describe_nodegroup(self, cluster: str, name: str) -> NodeGroup:
        ng = self._call(
            f"describe node group {cluster}/{name}",
            lambda: self._eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"],
        )
        scaling = ng.get("scalingConfig", {})
        return NodeGroup(
            cluster=cluster,
            name=name,
            status=str(ng.get("status", "")),
            min_size=int(scaling.get("minSize", 0)),
            max_size=int(scaling.get("maxSize", 0)),
            desired_size=int(scaling.get("desiredSize", 0)),
            ami_type=str(ng.get("amiType", "")),
            release_version=str(ng.get("releaseVersion", "")),
            labels=dict(ng.get("labels", {})),
        )

    def list_nodegroups(self, cluster: str) -> list[str]:
        def run() -> list[str]:
            names: list[str] = []
            for page in self._eks.get_paginator("list_nodegroups").paginate(clusterName=cluster):
                names.extend(page.get("nodegroups", []))
            return names

        return self._call(f"list node groups of {cluster}", run)

    def scale_nodegroup(
        self,
        cluster: str,
        name: str,
        *,
        desired: int,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> str:
        """update_nodegroup_config scalingConfig; returns the update id."""
        scaling: NodegroupScalingConfigTypeDef = {"desiredSize": desired}
        if min_size is not None:
            scaling["minSize"] = min_size
        if max_size is not None:
            scaling["maxSize"] = max_size
        update = self._call(
            f"scale node group {cluster}/{name} to {desired}",
            lambda: self._eks.update_nodegroup_config(
                clusterName=cluster,
                nodegroupName=name,
                scalingConfig=scaling,
            ),
        )
        return str(update["update"].get("id", ""))

    def delete_nodegroup(self, cluster: str, name: str) -> None:
        self._call(
            f"delete node group {cluster}/{name}",
            lambda: self._eks.delete_nodegroup(clusterName=cluster, nodegroupName=name),
        )

    # ---- EC2 ------------------------------------------------------------------------------------

    def describe_instances(self, instance_ids: Sequence[str]) -> list[JSON]:
        """Instances by id, every page; unknown ids raise NotFound (EC2's InvalidInstanceID.NotFound)."""
        if not instance_ids:
            return []

        def run() -> list[JSON]:
            out: list[JSON] = []
            pages = self._ec2.get_paginator("describe_instances").paginate(InstanceIds=list(instance_ids))
            for page in pages:
                for reservation in page.get("Reservations", []):
                    out.extend(dict(i) for i in reservation.get("Instances", []))
            return out

        return self._call(f"describe instances {', '.join(instance_ids[:5])}", run)

    def describe_images(self, image_ids: Sequence[str]) -> list[JSON]:
        if not image_ids:
            return []
        return self._call(
            f"describe images {', '.join(image_ids[:5])}",
            lambda: [dict(i) for i in self._ec2.describe_images(ImageIds=list(image_ids)).get("Images", [])],
        )

    # ---- SSM ------------------------------------------------------------------------------------

    def get_parameter(self, name: str) -> str:
        """A parameter's value, e.g. /aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id."""
        return self._call(
            f"get SSM parameter {name}",
            lambda: str(self._ssm.get_parameter(Name=name)["Parameter"].get("Value", "")),
        )

    # ---- reports: what the security comparison reads (IAM, Inspector2, volumes, groups) ---------

    @functools.cached_property
    def _iam(self) -> IAMClient:
        return self._session.client("iam", config=self._config, endpoint_url=self._endpoint_url)

    @functools.cached_property
    def _inspector2(self) -> Inspector2Client:
        return self._session.client("inspector2", config=self._config, endpoint_url=self._endpoint_url)

    def describe_volumes(self, volume_ids: Sequence[str]) -> list[JSON]:
        """Volumes by id (encryption, size, attachments), in chunks EC2 accepts."""

        def run() -> list[JSON]:
            out: list[JSON] = []
            for start in range(0, len(volume_ids), 200):
                pages = self._ec2.get_paginator("describe_volumes").paginate(
                    VolumeIds=list(volume_ids[start : start + 200])
                )
                for page in pages:
                    out.extend(dict(v) for v in page.get("Volumes", []))
            return out

        if not volume_ids:
            return []
        return self._call(f"describe volumes {', '.join(volume_ids[:5])}", run)

    def describe_security_groups(self, group_ids: Sequence[str]) -> list[JSON]:
        """Security groups by id, with their ingress rules."""

        def run() -> list[JSON]:
            out: list[JSON] = []
            for start in range(0, len(group_ids), 200):
                pages = self._ec2.get_paginator("describe_security_groups").paginate(
                    GroupIds=list(group_ids[start : start + 200])
                )
                for page in pages:
                    out.extend(dict(g) for g in page.get("SecurityGroups", []))
            return out

        if not group_ids:
            return []
        return self._call(f"describe security groups {', '.join(group_ids[:5])}", run)

    def nodegroup_launch_template(self, cluster: str, name: str) -> tuple[str, str] | None:
        """(launch template id, version) a managed node group launches from; None without one."""
        ng = self._call(
            f"describe node group {cluster}/{name}",
            lambda: self._eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"],
        )
        template = ng.get("launchTemplate") or {}
        if not template.get("id"):
            return None
        return str(template["id"]), str(template.get("version") or "$Default")

    def launch_template_user_data(self, template_id: str, version: str = "$Default") -> str:
        """The decoded user data of one launch template version ("" when it has none)."""

        def run() -> str:
            versions = self._ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[version]
            ).get("LaunchTemplateVersions", [])
            encoded = (versions[0].get("LaunchTemplateData") or {}).get("UserData", "") if versions else ""
            return base64.b64decode(encoded).decode("utf-8", "replace") if encoded else ""

        return self._call(f"read user data of launch template {template_id} version {version}", run)

    def active_findings(self, instance_ids: Sequence[str]) -> list[JSON]:
        """Inspector2's ACTIVE findings on these EC2 instances, every page. A filter takes at most 10
        values, so the ids go 10 at a time."""

        def run() -> list[JSON]:
            out: list[JSON] = []
            for start in range(0, len(instance_ids), 10):
                criteria: FilterCriteriaTypeDef = {
                    "resourceId": [
                        {"comparison": "EQUALS", "value": i} for i in instance_ids[start : start + 10]
                    ],
                    "findingStatus": [{"comparison": "EQUALS", "value": "ACTIVE"}],
                }
                token = ""
                while True:
                    page = (
                        self._inspector2.list_findings(
                            filterCriteria=criteria, maxResults=100, nextToken=token
                        )
                        if token
                        else self._inspector2.list_findings(filterCriteria=criteria, maxResults=100)
                    )
                    out.extend(dict(f) for f in page.get("findings", []))
                    token = page.get("nextToken", "")
                    if not token:
                        break
            return out

        if not instance_ids:
            return []
        return self._call(f"list Inspector2 findings of {', '.join(instance_ids[:5])}", run)

    def instance_profile_roles(self, profile_arn: str) -> list[str]:
        """The role names an instance profile carries (an EC2 instance's IamInstanceProfile.Arn)."""
        name = profile_arn.rsplit("/", 1)[-1]
        profile = self._call(
            f"get instance profile {name}",
            lambda: self._iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"],
        )
        return [str(r["RoleName"]) for r in profile.get("Roles", [])]

    def role_policy_documents(self, role: str) -> list[tuple[str, JSON]]:
        """(policy name, policy document) for every managed policy attached to `role` and every
        inline policy in it; documents as parsed JSON."""

        def run() -> list[tuple[str, JSON]]:
            out: list[tuple[str, JSON]] = []
            for page in self._iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
                for attached in page.get("AttachedPolicies", []):
                    arn = attached.get("PolicyArn", "")
                    policy = self._iam.get_policy(PolicyArn=arn)["Policy"]
                    version = self._iam.get_policy_version(
                        PolicyArn=arn, VersionId=policy.get("DefaultVersionId", "v1")
                    )["PolicyVersion"]
                    out.append((str(attached.get("PolicyName", arn)), _document(version.get("Document"))))
            for inline_page in self._iam.get_paginator("list_role_policies").paginate(RoleName=role):
                for name in inline_page.get("PolicyNames", []):
                    inline = self._iam.get_role_policy(RoleName=role, PolicyName=name)
                    out.append((f"{name} (inline)", _document(inline.get("PolicyDocument"))))
            return out

        return self._call(f"read the policies of IAM role {role}", run)


def _document(raw: Any) -> JSON:
    """A policy document as boto3 hands it over: already parsed, or URL-encoded JSON text."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        parsed = json.loads(urllib.parse.unquote(raw))
        return parsed if isinstance(parsed, dict) else {}
    return {}
