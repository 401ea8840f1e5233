"""Inspector2 package-vulnerability findings and EC2 coverage, served on the emulator's endpoint.

moto 5.2 (checked on 5.2.5) answers ListFindings from a queue of canned result pages keyed by the
exact request — it ignores filterCriteria, sortCriteria and pagination — and has no route at all for
ListCoverage (404). A security report asks "findings of instance i-…, by severity" and "is this
instance scanned", so the sandbox serves those two operations itself: a small WSGI layer in front
of moto's app answers POST /findings/list and /coverage/list for requests signed for inspector2,
with AWS's JSON shapes, filter semantics, sorting and nextToken paging; every other Inspector2
operation (Enable, BatchGetAccountStatus, filters, …) still goes to moto.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from sandbox.aws.seed import AmiFamily, Severity, SeverityCounts

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


@dataclass(frozen=True)
class Vulnerability:
    cve: str
    package: str
    version: str
    fixed_in: str
    severity: Severity
    cvss: float
    description: str
    exploit_available: bool = False
    epoch: int = 0
    package_manager: str = "OS"


# One representative vector for every finding: what the sandbox's findings must get right is which
# instance carries which package CVEs at which severity, not the scoring behind each base score.
_CVSS3 = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"

# Package versions as on the EKS AL2 AMI v20241024 (kernel 5.10) and Bottlerocket 1.26 (kernel 6.1).
# Which CVE lands on which instance is drawn from these lists; a policy cannot ask for more findings
# of a severity than a list holds.
CATALOG: Mapping[AmiFamily, Mapping[Severity, tuple[Vulnerability, ...]]] = {
    AmiFamily.AL2: {
        Severity.CRITICAL: (
            Vulnerability(
                "CVE-2024-45491",
                "expat",
                "2.1.0-15.amzn2.0.3",
                "2.1.0-15.amzn2.0.4",
                Severity.CRITICAL,
                9.8,
                "libexpat before 2.6.3: dtdCopy in xmlparse.c can have an "
                "integer overflow for nDefaultAtts on 32-bit platforms.",
            ),
            Vulnerability(
                "CVE-2024-45492",
                "expat",
                "2.1.0-15.amzn2.0.3",
                "2.1.0-15.amzn2.0.4",
                Severity.CRITICAL,
                9.8,
                "libexpat before 2.6.3: nextScaffoldPart in xmlparse.c can "
                "have an integer overflow for m_groupSize on 32-bit platforms.",
            ),
            Vulnerability(
                "CVE-2024-12084",
                "rsync",
                "3.1.2-11.amzn2.0.2",
                "3.1.2-11.amzn2.0.3",
                Severity.CRITICAL,
                9.8,
                "A heap-based buffer overflow in the rsync daemon: checksum "
                "lengths supplied by the attacker are not validated.",
            ),
        ),
        Severity.HIGH: (
            Vulnerability(
                "CVE-2024-50264",
                "kernel",
                "5.10.226-214.880.amzn2",
                "5.10.230-223.885.amzn2",
                Severity.HIGH,
                7.8,
                "vsock/virtio: a dangling pointer in vsk->trans can be used "
                "after free during connection teardown.",
            ),
            Vulnerability(
                "CVE-2024-53104",
                "kernel",
                "5.10.226-214.880.amzn2",
                "5.10.234-225.910.amzn2",
                Severity.HIGH,
                7.8,
                "media: uvcvideo: frames of type UVC_VS_UNDEFINED are parsed, "
                "leading to an out-of-bounds write.",
                exploit_available=True,
            ),
            Vulnerability(
                "CVE-2024-33599",
                "glibc",
                "2.26-64.amzn2.0.2",
                "2.26-64.amzn2.0.3",
                Severity.HIGH,
                7.6,
                "nscd: stack-based buffer overflow in the netgroup cache.",
            ),
            Vulnerability(
                "CVE-2025-0395",
                "glibc",
                "2.26-64.amzn2.0.2",
                "2.26-64.amzn2.0.4",
                Severity.HIGH,
                7.5,
                "A failing assert() does not allocate enough space for the "
                "assertion failure message, which may lead to a buffer overflow.",
            ),
            Vulnerability(
                "CVE-2024-56171",
                "libxml2",
                "2.9.1-6.amzn2.5.13",
                "2.9.1-6.amzn2.5.16",
                Severity.HIGH,
                7.8,
                "Use-after-free in xmlSchemaIDCFillNodeTables and xmlSchemaBubbleIDCNodeTables.",
            ),
            Vulnerability(
                "CVE-2024-6232",
                "python",
                "2.7.18-1.amzn2.0.9",
                "2.7.18-1.amzn2.0.10",
                Severity.HIGH,
                7.5,
                "Regular expressions in tarfile header parsing allow excessive backtracking (ReDoS).",
            ),
        ),
        Severity.MEDIUM: (
            Vulnerability(
                "CVE-2024-13176",
                "openssl",
                "1.0.2k-24.amzn2.0.13",
                "1.0.2k-24.amzn2.0.14",
                Severity.MEDIUM,
                4.1,
                "Timing side-channel in ECDSA signature computation.",
                epoch=1,
            ),
            Vulnerability(
                "CVE-2024-9143",
                "openssl",
                "1.0.2k-24.amzn2.0.13",
                "1.0.2k-24.amzn2.0.14",
                Severity.MEDIUM,
                4.3,
                "Low-level GF(2^m) elliptic curve APIs with invalid input may access memory out of bounds.",
                epoch=1,
            ),
            Vulnerability(
                "CVE-2024-40635",
                "containerd",
                "1.7.22-1.amzn2.0.2",
                "1.7.27-1.amzn2.0.1",
                Severity.MEDIUM,
                4.6,
                "Integer overflow in User ID handling: a container started with a large UID runs as root.",
            ),
            Vulnerability(
                "CVE-2023-48795",
                "openssh",
                "7.4p1-22.amzn2.0.9",
                "7.4p1-22.amzn2.0.10",
                Severity.MEDIUM,
                5.9,
                "Terrapin: SSH transport protocol prefix truncation downgrades connection security.",
            ),
            Vulnerability(
                "CVE-2024-9681",
                "curl",
                "8.3.0-1.amzn2.0.7",
                "8.3.0-1.amzn2.0.8",
                Severity.MEDIUM,
                6.5,
                "An HSTS subdomain entry can overwrite the parent domain's cache entry.",
            ),
        ),
        Severity.LOW: (
            Vulnerability(
                "CVE-2024-45310",
                "runc",
                "1.1.14-1.amzn2.0.1",
                "1.1.15-1.amzn2.0.1",
                Severity.LOW,
                3.6,
                "runc can be tricked into creating empty files or directories "
                "on the host through a shared volume.",
            ),
            Vulnerability(
                "CVE-2024-11053",
                "curl",
                "8.3.0-1.amzn2.0.7",
                "8.3.0-1.amzn2.0.8",
                Severity.LOW,
                3.4,
                "With .netrc and redirects, curl may leak the password for "
                "the first host to the followed-to host.",
            ),
            Vulnerability(
                "CVE-2024-0727",
                "openssl",
                "1.0.2k-24.amzn2.0.13",
                "1.0.2k-24.amzn2.0.14",
                Severity.LOW,
                5.5,
                "Processing a maliciously formatted PKCS12 file may crash "
                "OpenSSL (NULL pointer dereference).",
                epoch=1,
            ),
        ),
    },
    AmiFamily.BOTTLEROCKET: {
        Severity.CRITICAL: (
            Vulnerability(
                "CVE-2024-45337",
                "golang.org/x/crypto",
                "0.21.0",
                "0.31.0",
                Severity.CRITICAL,
                9.1,
                "Misuse of ServerConfig.PublicKeyCallback may cause an authorization bypass.",
                package_manager="GOBINARY",
            ),
        ),
        Severity.HIGH: (
            Vulnerability(
                "CVE-2025-21756",
                "kernel-6.1",
                "6.1.112",
                "6.1.129",
                Severity.HIGH,
                7.8,
                "vsock: the binding is released before socket destruction (use-after-free).",
            ),
            Vulnerability(
                "CVE-2024-53104",
                "kernel-6.1",
                "6.1.112",
                "6.1.128",
                Severity.HIGH,
                7.8,
                "media: uvcvideo: frames of type UVC_VS_UNDEFINED are parsed, leading to an "
                "out-of-bounds write.",
                exploit_available=True,
            ),
        ),
        Severity.MEDIUM: (
            Vulnerability(
                "CVE-2024-40635",
                "containerd",
                "1.7.22",
                "1.7.27",
                Severity.MEDIUM,
                4.6,
                "Integer overflow in User ID handling: a container started with a large UID runs as root.",
            ),
            Vulnerability(
                "CVE-2024-45338",
                "golang.org/x/net",
                "0.23.0",
                "0.33.0",
                Severity.MEDIUM,
                5.3,
                "Non-linear parsing of case-insensitive content in the html package.",
                package_manager="GOBINARY",
            ),
            Vulnerability(
                "CVE-2024-50302",
                "kernel-6.1",
                "6.1.112",
                "6.1.119",
                Severity.MEDIUM,
                5.5,
                "HID: core: the report buffer is not zero-initialized and can leak kernel memory.",
            ),
        ),
        Severity.LOW: (
            Vulnerability(
                "CVE-2024-45310",
                "runc",
                "1.1.14",
                "1.1.15",
                Severity.LOW,
                3.6,
                "runc can be tricked into creating empty files or directories on the host "
                "through a shared volume.",
            ),
            Vulnerability(
                "CVE-2023-25153",
                "containerd",
                "1.7.22",
                "1.7.23",
                Severity.LOW,
                3.3,
                "Importing an OCI image with a large file can exhaust memory.",
            ),
        ),
    },
}

_SEVERITY_RANK = {"CRITICAL": 5, "HIGH": 4, "MEDIUM": 3, "LOW": 2, "INFORMATIONAL": 1, "UNTRIAGED": 0}


def policy_problems(family: AmiFamily, counts: SeverityCounts) -> list[str]:
    """Why the catalog cannot give each `family` instance `counts` distinct findings (empty: it can)."""
    problems = []
    for severity in Severity:
        available = len(CATALOG[family][severity])
        if counts.of(severity) > available:
            problems.append(
                f"{family} instances cannot carry {counts.of(severity)} {severity} findings: "
                f"the catalog holds {available}"
            )
    return problems


@dataclass(frozen=True)
class ScannedInstance:
    """What Inspector2 knows about an EC2 instance it scans."""

    instance_id: str
    account_id: str
    region: str
    family: AmiFamily
    image_id: str
    instance_type: str
    private_ip: str
    subnet_id: str
    vpc_id: str
    launched_at: datetime.datetime
    key_name: str | None
    instance_profile_arn: str
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Finding:
    arn: str
    instance: ScannedInstance
    vulnerability: Vulnerability
    first_observed_at: datetime.datetime
    status: str = "ACTIVE"
    updated_at: datetime.datetime | None = None

    @property
    def severity(self) -> Severity:
        return self.vulnerability.severity

    @property
    def title(self) -> str:
        return f"{self.vulnerability.cve} - {self.vulnerability.package}"

    def to_api(self) -> dict[str, Any]:
        """The finding as ListFindings returns it (rest-json, timestamps as epoch seconds)."""
        vuln, inst = self.vulnerability, self.instance
        partition = "aws"
        fix = (
            f"Run yum update {vuln.package} to update your system."
            if inst.family is AmiFamily.AL2
            else f"Update Bottlerocket to a release with {vuln.package} {vuln.fixed_in} or later."
        )
        package: dict[str, Any] = {
            "name": vuln.package,
            "version": vuln.version,
            "epoch": vuln.epoch,
            "arch": "X86_64",
            "packageManager": vuln.package_manager,
            "fixedInVersion": vuln.fixed_in,
            "remediation": fix,
        }
        return {
            "findingArn": self.arn,
            "awsAccountId": inst.account_id,
            "type": "PACKAGE_VULNERABILITY",
            "title": self.title,
            "description": vuln.description,
            "remediation": {"recommendation": {"text": fix}},
            "severity": vuln.severity.value,
            "firstObservedAt": self.first_observed_at.timestamp(),
            "lastObservedAt": (self.updated_at or self.first_observed_at).timestamp(),
            "updatedAt": (self.updated_at or self.first_observed_at).timestamp(),
            "status": self.status,
            "inspectorScore": vuln.cvss,
            "fixAvailable": "YES",
            "exploitAvailable": "YES" if vuln.exploit_available else "NO",
            "resources": [
                {
                    "type": "AWS_EC2_INSTANCE",
                    "id": inst.instance_id,
                    "partition": partition,
                    "region": inst.region,
                    "tags": dict(inst.tags),
                    "details": {
                        "awsEc2Instance": {
                            "type": inst.instance_type,
                            "imageId": inst.image_id,
                            "ipV4Addresses": [inst.private_ip],
                            **({"keyName": inst.key_name} if inst.key_name else {}),
                            "iamInstanceProfileArn": inst.instance_profile_arn,
                            "vpcId": inst.vpc_id,
                            "subnetId": inst.subnet_id,
                            "launchedAt": inst.launched_at.timestamp(),
                            "platform": "AMAZON_LINUX_2" if inst.family is AmiFamily.AL2 else "BOTTLEROCKET",
                        }
                    },
                }
            ],
            "packageVulnerabilityDetails": {
                "vulnerabilityId": vuln.cve,
                "source": "AMAZON_CVE" if inst.family is AmiFamily.AL2 else "NVD",
                "sourceUrl": f"https://nvd.nist.gov/vuln/detail/{vuln.cve}",
                "vendorSeverity": vuln.severity.value.capitalize(),
                "vulnerablePackages": [package],
                "cvss": [
                    {"baseScore": vuln.cvss, "scoringVector": _CVSS3, "version": "3.1", "source": "NVD"}
                ],
                "referenceUrls": [f"https://nvd.nist.gov/vuln/detail/{vuln.cve}"],
            },
        }


class InspectorValidationError(Exception):
    """A request the real service would refuse with 400 ValidationException."""


# --- filtering --------------------------------------------------------------------------------

_FINDING_STRING_FIELDS: Mapping[str, Callable[[Finding], str]] = {
    "findingArn": lambda f: f.arn,
    "awsAccountId": lambda f: f.instance.account_id,
    "findingType": lambda f: "PACKAGE_VULNERABILITY",
    "severity": lambda f: f.severity.value,
    "findingStatus": lambda f: f.status,
    "title": lambda f: f.title,
    "resourceType": lambda f: "AWS_EC2_INSTANCE",
    "resourceId": lambda f: f.instance.instance_id,
    "ec2InstanceImageId": lambda f: f.instance.image_id,
    "ec2InstanceVpcId": lambda f: f.instance.vpc_id,
    "ec2InstanceSubnetId": lambda f: f.instance.subnet_id,
    "vulnerabilityId": lambda f: f.vulnerability.cve,
    "vulnerabilitySource": lambda f: "AMAZON_CVE" if f.instance.family is AmiFamily.AL2 else "NVD",
    "vendorSeverity": lambda f: f.severity.value.capitalize(),
    "fixAvailable": lambda f: "YES",
    "exploitAvailable": lambda f: "YES" if f.vulnerability.exploit_available else "NO",
}
_FINDING_DATE_FIELDS: Mapping[str, Callable[[Finding], datetime.datetime]] = {
    "firstObservedAt": lambda f: f.first_observed_at,
    "lastObservedAt": lambda f: f.updated_at or f.first_observed_at,
    "updatedAt": lambda f: f.updated_at or f.first_observed_at,
}
_FINDING_SORT_FIELDS: Mapping[str, Callable[[Finding], Any]] = {
    "SEVERITY": lambda f: _SEVERITY_RANK[f.severity.value],
    "FIRST_OBSERVED_AT": lambda f: f.first_observed_at,
    "LAST_OBSERVED_AT": lambda f: f.updated_at or f.first_observed_at,
    "FINDING_STATUS": lambda f: f.status,
    "FINDING_TYPE": lambda f: "PACKAGE_VULNERABILITY",
    "RESOURCE_TYPE": lambda f: "AWS_EC2_INSTANCE",
    "VULNERABILITY_ID": lambda f: f.vulnerability.cve,
    "INSPECTOR_SCORE": lambda f: f.vulnerability.cvss,
    "AWS_ACCOUNT_ID": lambda f: f.instance.account_id,
}


def _string_match(value: str, filters: list[dict[str, Any]], what: str) -> bool:
    # AWS semantics: the EQUALS/PREFIX filters of one field are alternatives (OR); every NOT_EQUALS
    # must hold (AND); different fields combine with AND.
    positive, negative = [], []
    for f in filters:
        comparison, expected = f.get("comparison"), f.get("value")
        if not isinstance(expected, str) or comparison not in ("EQUALS", "PREFIX", "NOT_EQUALS"):
            raise InspectorValidationError(f"Invalid string filter for {what}: {f}")
        if comparison == "NOT_EQUALS":
            negative.append(value != expected)
        else:
            positive.append(value == expected if comparison == "EQUALS" else value.startswith(expected))
    return (not positive or any(positive)) and all(negative)


def _date_match(value: datetime.datetime, filters: list[dict[str, Any]]) -> bool:
    stamp = value.timestamp()
    return any(
        f.get("startInclusive", float("-inf")) <= stamp <= f.get("endInclusive", float("inf"))
        for f in filters
    )


def _map_match(tags: Mapping[str, str], filters: list[dict[str, Any]], what: str) -> bool:
    for f in filters:
        if f.get("comparison") != "EQUALS" or "key" not in f:
            raise InspectorValidationError(f"Invalid map filter for {what}: {f}")
        if f["key"] not in tags or ("value" in f and tags[f["key"]] != f["value"]):
            return False
    return True


def _finding_matches(finding: Finding, criteria: Mapping[str, Any]) -> bool:
    for key, filters in criteria.items():
        if not isinstance(filters, list):
            raise InspectorValidationError(f"filterCriteria.{key} must be a list")
        if key in _FINDING_STRING_FIELDS:
            if not _string_match(_FINDING_STRING_FIELDS[key](finding), filters, key):
                return False
        elif key in _FINDING_DATE_FIELDS:
            if not _date_match(_FINDING_DATE_FIELDS[key](finding), filters):
                return False
        elif key == "inspectorScore":
            score = finding.vulnerability.cvss
            if not any(
                f.get("lowerInclusive", float("-inf")) <= score <= f.get("upperInclusive", float("inf"))
                for f in filters
            ):
                return False
        elif key == "resourceTags":
            if not _map_match(dict(finding.instance.tags), filters, key):
                return False
        elif key == "vulnerablePackages":
            if not any(_package_match(finding.vulnerability, f) for f in filters):
                return False
        else:
            raise InspectorValidationError(
                f"filterCriteria.{key} is not supported by the sandbox's Inspector2 "
                f"(supported: {sorted([*_FINDING_STRING_FIELDS, *_FINDING_DATE_FIELDS])} and "
                "inspectorScore, resourceTags, vulnerablePackages)"
            )
    return True


def _package_match(vuln: Vulnerability, package_filter: Mapping[str, Any]) -> bool:
    fields = {"name": vuln.package, "version": vuln.version, "architecture": "X86_64", "epoch": vuln.epoch}
    for key, condition in package_filter.items():
        if key not in fields:
            raise InspectorValidationError(f"vulnerablePackages.{key} is not supported by the sandbox")
        if key == "epoch":
            low, high = (
                condition.get("lowerInclusive", float("-inf")),
                condition.get("upperInclusive", float("inf")),
            )
            if not low <= vuln.epoch <= high:
                return False
        elif not _string_match(str(fields[key]), [condition], f"vulnerablePackages.{key}"):
            return False
    return True


@dataclass(frozen=True)
class Coverage:
    instance: ScannedInstance
    last_scanned_at: datetime.datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "resourceType": "AWS_EC2_INSTANCE",
            "resourceId": self.instance.instance_id,
            "accountId": self.instance.account_id,
            "scanType": "PACKAGE",
            "scanMode": "EC2_SSM_AGENT_BASED",
            "scanStatus": {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"},
            "resourceMetadata": {
                "ec2": {
                    "tags": dict(self.instance.tags),
                    "amiId": self.instance.image_id,
                    "platform": "LINUX",
                }
            },
            "lastScannedAt": self.last_scanned_at.timestamp(),
        }


_COVERAGE_STRING_FIELDS: Mapping[str, Callable[[Coverage], str]] = {
    "resourceId": lambda c: c.instance.instance_id,
    "resourceType": lambda c: "AWS_EC2_INSTANCE",
    "accountId": lambda c: c.instance.account_id,
    "scanType": lambda c: "PACKAGE",
    "scanMode": lambda c: "EC2_SSM_AGENT_BASED",
    "scanStatusCode": lambda c: "ACTIVE",
    "scanStatusReason": lambda c: "SUCCESSFUL",
}


def _coverage_matches(coverage: Coverage, criteria: Mapping[str, Any]) -> bool:
    for key, filters in criteria.items():
        if not isinstance(filters, list):
            raise InspectorValidationError(f"filterCriteria.{key} must be a list")
        if key in _COVERAGE_STRING_FIELDS:
            if not _string_match(_COVERAGE_STRING_FIELDS[key](coverage), filters, key):
                return False
        elif key == "ec2InstanceTags":
            if not _map_match(dict(coverage.instance.tags), filters, key):
                return False
        elif key == "lastScannedAt":
            if not _date_match(coverage.last_scanned_at, filters):
                return False
        else:
            raise InspectorValidationError(
                f"filterCriteria.{key} is not supported by the sandbox's Inspector2 ListCoverage "
                f"(supported: {sorted(_COVERAGE_STRING_FIELDS)} and ec2InstanceTags, lastScannedAt)"
            )
    return True


# --- the store --------------------------------------------------------------------------------


class FindingsStore:
    """Findings and coverage of one emulator's instances; thread-safe (the server is threaded)."""

    def __init__(self, random_seed: int) -> None:
        self._lock = threading.Lock()
        self._findings: dict[str, list[Finding]] = {}
        self._coverage: dict[str, Coverage] = {}
        self._random_seed = random_seed

    def reseed(self, random_seed: int) -> None:
        with self._lock:
            self._random_seed = random_seed

    def scan(self, instance: ScannedInstance, counts: SeverityCounts, observed_at: datetime.datetime) -> None:
        """Record what a first scan of `instance` finds: `counts` distinct CVEs of its OS family."""
        # One generator per instance: which CVEs an instance gets does not depend on launch order.
        rng = random.Random(f"{self._random_seed}/{instance.instance_id}")
        chosen: list[Vulnerability] = []
        for severity in Severity:
            chosen.extend(rng.sample(CATALOG[instance.family][severity], counts.of(severity)))
        findings = [
            Finding(
                arn=(
                    f"arn:aws:inspector2:{instance.region}:{instance.account_id}:finding/"
                    + hashlib.sha256(f"{instance.instance_id}/{v.cve}".encode()).hexdigest()[:32]
                ),
                instance=instance,
                vulnerability=v,
                first_observed_at=observed_at,
            )
            for v in chosen
        ]
        with self._lock:
            self._findings[instance.instance_id] = findings
            self._coverage[instance.instance_id] = Coverage(instance, observed_at)

    def close(self, instance_id: str, at: datetime.datetime) -> None:
        """The instance terminated: Inspector closes its findings and stops covering it."""
        with self._lock:
            self._findings[instance_id] = [
                replace(f, status="CLOSED", updated_at=at) for f in self._findings.get(instance_id, [])
            ]
            self._coverage.pop(instance_id, None)

    def findings(self, instance_id: str | None = None) -> list[Finding]:
        with self._lock:
            if instance_id is not None:
                return list(self._findings.get(instance_id, []))
            return [f for found in self._findings.values() for f in found]

    def coverage(self) -> list[Coverage]:
        with self._lock:
            return list(self._coverage.values())

    def list_findings(self, body: Mapping[str, Any]) -> dict[str, Any]:
        criteria = body.get("filterCriteria") or {}
        selected = [f for f in self.findings() if _finding_matches(f, criteria)]
        sort = body.get("sortCriteria")
        if sort:
            key = _FINDING_SORT_FIELDS.get(sort.get("field", ""))
            if key is None:
                raise InspectorValidationError(
                    f"sortCriteria.field {sort.get('field')!r} is not supported by the sandbox "
                    f"(supported: {sorted(_FINDING_SORT_FIELDS)})"
                )
            selected.sort(key=key, reverse=sort.get("sortOrder") == "DESC")
        page, token = _paginate(selected, body, default_size=50)
        return {"findings": [f.to_api() for f in page], **({"nextToken": token} if token else {})}

    def list_coverage(self, body: Mapping[str, Any]) -> dict[str, Any]:
        criteria = body.get("filterCriteria") or {}
        selected = [c for c in self.coverage() if _coverage_matches(c, criteria)]
        page, token = _paginate(selected, body, default_size=100)
        return {"coveredResources": [c.to_api() for c in page], **({"nextToken": token} if token else {})}


def _paginate(items: list[Any], body: Mapping[str, Any], default_size: int) -> tuple[list[Any], str | None]:
    size = body.get("maxResults") or default_size
    offset = 0
    if token := body.get("nextToken"):
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(token))["offset"])
        except (ValueError, KeyError, TypeError) as e:
            raise InspectorValidationError(f"Invalid nextToken: {token}") from e
    end = offset + int(size)
    next_token = (
        base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(items) else None
    )
    return items[offset:end], next_token


# --- the WSGI layer ---------------------------------------------------------------------------

# SigV4: "Credential=AKID/20241125/us-west-2/inspector2/aws4_request" names the service signed for.
_SIGNED_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/aws4_request")


class InspectorApi:
    """WSGI middleware: ListFindings and ListCoverage from a FindingsStore, the rest to moto."""

    def __init__(self, app: WSGIApplication, store: FindingsStore) -> None:
        self._app = app
        self._store = store
        self._routes: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "/findings/list": store.list_findings,
            "/coverage/list": store.list_coverage,
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        handler = self._routes.get(environ.get("PATH_INFO", ""))
        signed = _SIGNED_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if handler is None or environ.get("REQUEST_METHOD") != "POST" or not signed:
            return self._app(environ, start_response)
        if signed["service"] != "inspector2":
            return self._app(environ, start_response)
        request = Request(environ)
        try:
            body = request.get_json(force=True, silent=True) or {}
            if not isinstance(body, dict):
                raise InspectorValidationError("the request body must be a JSON object")
            response = Response(json.dumps(handler(body)), status=200, content_type="application/json")
        except InspectorValidationError as e:
            response = Response(
                json.dumps({"message": str(e)}),
                status=400,
                content_type="application/json",
                headers={"x-amzn-ErrorType": "ValidationException"},
            )
        return response(environ, start_response)
