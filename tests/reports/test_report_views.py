"""The reports in Slack: Block Kit that Slack accepts (the sandbox checks Slack's documented limits),
long lists cut with a count, the full table as a file; and the CLI's formats carry the same data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from objects import deployment, node, pdb, pod, replicaset

from bot.domain.timings import NodeTiming, PodTiming
from bot.plan import load_plan
from bot.plan.models import Selector, Wave
from bot.reports.facts import AwsFacts, InstanceFacts, cluster_facts_from_objects
from bot.reports.readiness import readiness
from bot.reports.render import render
from bot.reports.results import results
from bot.reports.security import security
from handlers.report_views import readiness_blocks, report_file, results_blocks, security_blocks
from sandbox.slack.blockkit import validate_blocks

PLAN = load_plan(Path(__file__).parents[2] / "examples" / "plan.yaml")
WEB = Wave(name="web", selector=Selector(managed_node_groups=("ng-web",)))


def crowded(bare_pods: int) -> dict:  # type: ignore[type-arg]
    """A wave whose nodes run `bare_pods` pods without a controller: one blocker each."""
    nodes = [node(f"n{i}") for i in range(20)]
    pods = [pod("web-5d78c9869d-a", "n0"), pod("web-5d78c9869d-b", "n1")]
    pods += [
        pod(f"adhoc-{i:04d}", f"n{i % 20}", owner=None, labels={"app": "adhoc"}) for i in range(bare_pods)
    ]
    return {
        "nodes": nodes,
        "pods": pods,
        "replicasets": [replicaset("web-5d78c9869d", "web")],
        "deployments": [deployment("web")],
        "pdbs": [pdb("web", allowed=1)],
    }


def text_of(blocks: list[dict]) -> str:  # type: ignore[type-arg]
    return json.dumps(blocks, ensure_ascii=False)


def test_a_readiness_report_with_hundreds_of_reasons_fits_one_slack_message_and_says_how_many_were_cut() -> (
    None
):
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**crowded(500)))
    blocks = readiness_blocks(report)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50
    assert "… and " in text_of(blocks) and " more" in text_of(blocks)
    assert "BLOCKED" in blocks[0]["text"]["text"]
    name, content = report_file(report, "csv")
    assert name == "wave-1-readiness.csv"
    rows = list(csv.DictReader(io.StringIO(content)))
    assert sum(1 for r in rows if r["check"] == "unreplicated") == 500  # the file has them all


def test_a_ready_wave_renders_without_reason_sections() -> None:
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**crowded(0)))
    blocks = readiness_blocks(report)
    assert validate_blocks(blocks) == []
    assert "READY" in blocks[0]["text"]["text"] and "Blockers" not in text_of(blocks)


def test_the_security_table_renders_a_row_per_topic_with_each_cells_source() -> None:
    facts = cluster_facts_from_objects(**crowded(0))
    instances = {
        n.instance_id: InstanceFacts(n.instance_id, "ami-1", "optional", 2, "ops", None, (), (), None)
        for n in facts.inventory.nodes.values()
    }
    report = security(
        WEB, 1, PLAN.target, facts, AwsFacts(instances=instances, unknown={"inspector2": "AccessDenied"})
    )
    blocks = security_blocks(report)
    assert validate_blocks(blocks) == []
    assert report.al2.imds_v1 == 20 and report.al2.findings is None
    cves = next(r for r in report.rows if r.topic == "CVEs by severity")
    assert cves.al2.value == "unknown" and "AccessDenied" in cves.al2.detail
    assert "_observed_" in text_of(blocks) and "_known_" in text_of(blocks) and "_unknown_" in text_of(blocks)
    data = json.loads(render(report, "json"))
    assert data["al2"]["imds_v1"] == 20 and len(data["rows"]) == len(report.rows)


def test_results_render_with_pending_work_listed_and_cut() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    nodes = [
        NodeTiming(
            f"br-{i}", "bottlerocket", "m5.large", t0, t0, t0 + dt.timedelta(seconds=50 + i) if i else None
        )
        for i in range(3)
    ]
    pods = [
        PodTiming("shop", f"cart-{i}", "Deployment/shop/cart", t0, None, None, None, None) for i in range(400)
    ]
    report = results(1, "web", nodes, pods)
    assert report.nodes_pending == ("br-0",) and len(report.pods_pending) == 400
    assert report.bottlerocket_ready.p50 == 51.5
    blocks = results_blocks(report)
    assert validate_blocks(blocks) == [] and "… and " in text_of(blocks)
    assert "unknown: no AL2 node launch recorded" in render(report, "text")
