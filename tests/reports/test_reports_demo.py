"""Issue 7's acceptance on the sandbox's demo scenario, over the wire: the incompatible workloads are
found with object, reason and fix; a PDB that allows no disruption blocks its wave by name; the
security table's counts equal what the AWS side was seeded with; the CLI prints the same reports."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

from conftest import EXAMPLE_PLAN, World, wait_for

from bot.reports.readiness import Readiness, Verdict
from bot.reports.reasons import Severity
from bot.services.reports import readiness_report, security_report, wave_reports
from handlers.report_views import readiness_blocks, security_blocks
from sandbox.slack.blockkit import validate_blocks

WAVES = (1, 2, 3)


def reports(demo: World) -> dict[int, Readiness]:
    return {n: readiness_report(demo.plan, n, demo.kube, demo.aws) for n in WAVES}


def blockers_of(report: Readiness, obj: str) -> list[str]:
    return [
        f"{r.check}: {r.reason} — {r.fix}"
        for r in report.reasons
        if r.severity is Severity.BLOCKER and r.object == obj
    ]


def test_the_incompatible_workloads_are_found_in_every_wave_that_runs_them(demo: World) -> None:
    seen: Counter[str] = Counter()
    for number, report in reports(demo).items():
        workloads = {w.workload for w in report.workloads}
        if "DaemonSet platform-tools/node-tuner" in workloads:
            seen["node-tuner"] += 1
            found = blockers_of(report, "DaemonSet platform-tools/node-tuner")
            assert any(b.startswith("hostpath-read-only") and "/usr/local/bin" in b for b in found), found
            assert any(b.startswith("package-manager") and "yum" in b for b in found), found
            assert report.verdict is Verdict.BLOCKED
        if "Deployment shop/image-resizer" in workloads:
            seen["image-resizer"] += 1
            (resizer,) = blockers_of(report, "Deployment shop/image-resizer")
            assert "/usr/share/resizer-cache" in resizer and "read-only" in resizer
            assert "/var/lib/resizer-cache" in resizer  # the fix names where to write instead
            assert report.verdict is Verdict.BLOCKED, number
        for row in report.workloads:
            if row.workload not in ("DaemonSet platform-tools/node-tuner", "Deployment shop/image-resizer"):
                assert row.compatible, (number, row.workload, blockers_of(report, row.workload))
    assert seen["node-tuner"] >= 1 and seen["image-resizer"] >= 1, seen
    for report in reports(demo).values():  # and Slack would take each of them as a message
        assert validate_blocks(readiness_blocks(report)) == []


def test_a_wave_behind_a_pdb_that_allows_no_disruption_is_blocked_and_names_the_pdb(demo: World) -> None:
    path = "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/storefront"

    def allowed() -> int:
        return int(demo.kube.request("GET", path).get("status", {}).get("disruptionsAllowed", -1))

    def patch(max_unavailable: int) -> None:
        demo.kube.request(
            "PATCH",
            path,
            body={"spec": {"maxUnavailable": max_unavailable}},
            content_type="application/merge-patch+json",
        )

    patch(0)
    try:
        wait_for("PDB shop/storefront to allow no disruption", lambda: allowed() == 0)
        waves = [
            r
            for r in reports(demo).values()
            if "Deployment shop/storefront" in {w.workload for w in r.workloads}
        ]
        assert waves, "no wave runs shop/storefront"
        for report in waves:
            assert report.verdict is Verdict.BLOCKED
            (reason,) = [r for r in report.reasons if r.check == "pdb-no-headroom"]
            assert reason.object == "PodDisruptionBudget shop/storefront"
            assert "allows 0 disruptions" in reason.reason and "shop/storefront-" in reason.reason
            assert "maxUnavailable" in reason.fix
    finally:
        patch(1)
        wait_for("PDB shop/storefront to allow a disruption again", lambda: allowed() == 1)


def test_the_security_counts_equal_the_seeded_aws_data(demo: World) -> None:
    aws = demo.sandbox.aws
    seeded = demo.sandbox.seeded
    assert aws is not None and seeded is not None
    by_name = {i.name: i for i in aws.instances()}
    scenario_groups = {g.name: g for g in demo.sandbox.scenario.node_groups}
    for number in WAVES:
        report = security_report(demo.plan, number, demo.kube, demo.aws)
        instances = [by_name[n] for n in report.al2_nodes]
        assert len(instances) == report.al2.instances == len(report.al2_nodes) > 0
        assert report.al2.imds_v1 == sum(1 for i in instances if i.http_tokens == "optional")
        # AL2 instances have one EBS volume each (the root volume holds pod data too).
        assert report.al2.volumes == len(instances)
        assert report.al2.unencrypted_volumes == sum(1 for i in instances if not i.ebs_encrypted)
        ssh_groups = {
            seeded.node_groups[g].security_group_id
            for g in {i.node_group for i in instances}
            if g is not None and scenario_groups[g].ssh_open
        }
        assert set(report.al2.ssh_open_groups or ()) == ssh_groups
        assert report.al2.ssh_keys == sum(1 for i in instances if i.ssh_key_name)
        expected: Counter[str] = Counter()
        for i in instances:
            expected.update({s.value: c for s, c in aws.active_finding_counts(i.instance_id).items()})
        assert report.al2.findings is not None
        assert {k: v for k, v in report.al2.findings.items() if v} == {k: v for k, v in expected.items() if v}
        assert sum(expected.values()) > 0
    # Both reports from one gathering (AWS read while the pods are listed) say the same.
    readiness, security = wave_reports(demo.plan, 3, demo.kube, demo.aws)
    assert security.al2 == security_report(demo.plan, 3, demo.kube, demo.aws).al2
    assert readiness.reasons == readiness_report(demo.plan, 3, demo.kube, demo.aws).reasons
    # The scenario's own arithmetic: ng-web keeps IMDSv1 on 30% of 10 nodes and is open on port 22;
    # ng-batch's 6 volumes are unencrypted.
    web = security_report(demo.plan, 1, demo.kube, demo.aws)
    assert validate_blocks(security_blocks(web)) == []
    assert web.al2.imds_v1 == 3 and len(web.al2.ssh_open_groups or ()) == 1
    batch = security_report(demo.plan, 3, demo.kube, demo.aws)
    assert batch.al2.unencrypted_volumes == 6


def test_every_security_cell_says_where_its_value_comes_from(demo: World) -> None:
    report = security_report(demo.plan, 1, demo.kube, demo.aws)
    topics = [row.topic for row in report.rows]
    for wanted in ("SSH", "Root filesystem", "SELinux", "Kernel lockdown", "IMDSv2", "EBS encryption", "CVEs",
                   "IAM", "Update model", "drift", "support"):  # fmt: skip
        assert any(wanted in t for t in topics), wanted
    for row in report.rows:
        for cell in (row.al2, row.bottlerocket):
            assert cell.source.value in ("observed", "known", "unknown")
            if cell.source.value == "unknown":
                assert cell.detail, row.topic  # unknown always says why


def _cli(demo: World, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("migratebot", path=os.path.dirname(sys.executable))
    assert executable
    assert demo.sandbox.aws is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIGRATEBOT_", "AWS_"))}
    env.update(demo.sandbox.aws.client_env())
    env["KUBECONFIG"] = str(demo.sandbox.kubeconfig)
    env["MIGRATEBOT_PLAN"] = str(EXAMPLE_PLAN)
    return subprocess.run([executable, "report", *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_cli_prints_the_readiness_report_as_json_and_the_security_table_as_csv(demo: World) -> None:
    result = _cli(demo, "readiness", "--wave", "1", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "BLOCKED" and data["wave_name"] == "stateless-web"
    assert any(r["object"] == "DaemonSet platform-tools/node-tuner" for r in data["reasons"])
    table = _cli(demo, "security", "--wave", "3", "--format", "csv")
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    ebs = next(r for r in rows if r["topic"] == "EBS encryption")
    assert ebs["al2_source"] == "observed" and ebs["al2"].startswith("6 of ")
    text = _cli(demo, "readiness", "--wave", "2")
    assert text.returncode == 0 and text.stdout.startswith("Wave 2 (karpenter-general) readiness: ")


def test_the_cli_refuses_an_unknown_wave_listing_the_plans_waves(demo: World) -> None:
    result = _cli(demo, "readiness", "--wave", "9")
    assert result.returncode == 2
    assert (
        "wave 9" in result.stderr and "1 stateless-web" in result.stderr and "--wave 1 to 3" in result.stderr
    )
    assert result.stdout == ""
