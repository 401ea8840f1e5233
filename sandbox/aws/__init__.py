"""AWS behind the sandbox: moto's server seeded with an EKS cluster, its nodes and their security data.

Start with `AwsEmulator`, seed it with an `AwsSeed`; docs/sandbox-aws.md tells the whole story.
"""

from sandbox.aws.amis import AmiRecord, NodeOsInfo
from sandbox.aws.emulator import ANY_CREDENTIALS_ACCOUNT_ID, AwsEmulator, UnknownInstanceError
from sandbox.aws.inspector import Finding
from sandbox.aws.records import NodeGroupRecord, NodeInstance, ScaleResult, SeedResult
from sandbox.aws.seed import (
    AmiFamily,
    AwsSeed,
    FindingsPolicy,
    KarpenterPoolSeed,
    NodeGroupSeed,
    Severity,
    SeverityCounts,
)

__all__ = [
    "ANY_CREDENTIALS_ACCOUNT_ID",
    "AmiFamily",
    "AmiRecord",
    "AwsEmulator",
    "AwsSeed",
    "Finding",
    "FindingsPolicy",
    "KarpenterPoolSeed",
    "NodeGroupRecord",
    "NodeGroupSeed",
    "NodeInstance",
    "NodeOsInfo",
    "ScaleResult",
    "SeedResult",
    "Severity",
    "SeverityCounts",
    "UnknownInstanceError",
]
