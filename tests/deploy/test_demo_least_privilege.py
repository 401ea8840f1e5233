"""The whole demo story runs under exactly the rights the deployment grants: the Helm chart's rendered
RBAC for Kubernetes and docs/iam-policy.json for AWS — nothing refused, nothing granted in vain.

One run of bot/demo.py's play_slack_story (what `migratebot demo` plays: three waves requested in Slack,
approved, executed by `migratebot serve`'s engine, baked by its canary — wave 2's canary failure paged
and resumed — under a Lease election), with the sandbox's cluster-admin grant to the bot's service
account replaced by the chart's ServiceAccount, ClusterRole, Role and bindings before the bot starts.
The chart is rendered with its default values, which ship examples/plan.yaml and read its
`impersonation:` section: `impersonate` on the plan's people only, and then none of the bot's own write
verbs — every change to the cluster is made in a person's name. The engine impersonates the SRE who
requested a wave, or the approving team lead when the requester is unmapped: waves 1 and 2 are requested
by alice (mapped) and run as alice@example.com [platform-sre]; wave 3 is requested by bob (not mapped)
and approved by carol, and runs as carol@example.com [platform-leads]. Those requests are judged by the
sandbox's RBAC for the impersonated identity (the demo scenario's rbac_groups: both groups may cordon,
evict and change NodePools and the EC2NodeClass), and they use the bot's `impersonate` grants, which is
what rbac_coverage counts for them.

Then, from the sandbox API's request log (every request, as the apiserver's audit log records it):
no request of the bot's service account — or made in someone's name by it — got 403, and every
grant the chart gives was used, with no exception list. And from every AWS call the bot's own
AwsAdapter code made (botocore's event hook on each session the bot opens; the sandbox's own boto3
clients are left out): each is allowed by docs/iam-policy.json on the resources it named, and every
action the policy grants was called (the demo's node role carries an inline policy, so the security
report's iam:GetRolePolicy is called too).
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import NAMESPACE
from iam_coverage import (
    CallRecorder,
    PolicyCoverage,
    load_policy,
    policy_coverage,
    recording_every_session,
)
from rbac_coverage import Coverage, describe, rbac_coverage, service_account_user
from rbac_sandbox import SERVICE_ACCOUNT, install_chart_rbac
from rich.console import Console

from bot.demo import SRE, TEAM_LEAD, DemoStack, play_slack_story
from bot.domain.policy import Actor
from bot.plan import load_plan
from bot.plan.models import Impersonation
from bot.services.context import open_storage
from bot.services.demo import demo_plan_file
from bot.services.plans import register_plan
from bot.settings import Settings
from sandbox.kube import SandboxServer
from sandbox.main import Sandbox
from sandbox.slack import SlackEmulator
from storage.schema import upgrade

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = REPO / "examples" / "plan.yaml"
POLICY = load_policy(REPO / "docs" / "iam-policy.json")
BOT = service_account_user(*SERVICE_ACCOUNT)

JSON = dict[str, Any]


class Run:
    """What the run leaves to judge: the sandbox API (its request log outlives the sandbox), the
    chart's manifests as loaded, the bot's AWS calls, the Lease's holder, and the console's story."""

    def __init__(self, tmp: Path, values: JSON) -> None:
        self.values = values
        self.data = tmp / "data"
        self.data.mkdir(exist_ok=True)
        self.out = io.StringIO()
        self.console = Console(file=self.out, width=140, color_system=None, force_terminal=False)
        # Only calls made from the bot's AWS adapter: the sandbox's own controllers use boto3 too.
        self.aws = CallRecorder("", "", caller="bot.adapters.aws.client")
        self.kube: SandboxServer | None = None
        self.manifests: list[JSON] = []
        self.lease_holder = ""
        self.slack: SlackEmulator | None = None

    def prepare(self, sandbox: Sandbox) -> None:
        """After the sandbox starts, before the bot does: the chart's RBAC in place of cluster-admin."""
        assert sandbox.aws is not None
        self.kube = sandbox.kube_server
        self.aws.region, self.aws.account = sandbox.scenario.cluster.region, sandbox.aws.account_id
        self.manifests = install_chart_rbac(sandbox.kube_server, self.values)
        # And the Slack app's bot token holds exactly manifest.yaml's scopes (the emulator refuses a
        # call whose scope the token lacks, as Slack does).
        assert sandbox.slack is not None
        self.slack = sandbox.slack
        workspace = sandbox.slack.workspace
        workspace.seed = dataclasses.replace(
            workspace.seed, bot=dataclasses.replace(workspace.seed.bot, scopes=MANIFEST_SCOPES)
        )

    def inspect(self, stack: DemoStack) -> None:
        lease = stack.admin.get_lease(NAMESPACE, stack.bot.settings.lease_name)
        self.lease_holder = str(lease["spec"].get("holderIdentity") or "")

    def log(self) -> list[JSON]:
        """Every request the sandbox's API answered, the bot's shutdown included."""
        assert self.kube is not None, "the sandbox never started"
        return self.kube.api.log.since(0)[0]

    def story(self, lines: int = 60) -> str:
        return "\n".join(self.out.getvalue().splitlines()[-lines:])


MANIFEST_SCOPES = tuple(
    yaml.safe_load((Path(__file__).resolve().parents[2] / "manifest.yaml").read_text())["oauth_config"][
        "scopes"
    ]["bot"]
)
NOT_FOR_WEB_API = {"commands"}  # granted with the slash command; no Web API method needs it


def _listed(title: str, lines: list[str]) -> str:
    return f"{title}:\n" + ("\n".join(f"  {line}" for line in lines) if lines else "  none")


@pytest.mark.slow
def test_the_whole_demo_runs_under_the_charts_rbac_and_the_iam_policy_with_nothing_refused_or_unused(
    tmp_path: Path,
) -> None:
    plan_file = demo_plan_file(EXAMPLE_PLAN, tmp_path / "data")
    plan = load_plan(plan_file)
    run = Run(tmp_path, {})  # the chart's defaults: examples/plan.yaml, impersonation read from it
    database = f"sqlite:///{(run.data / 'demo.db').resolve()}"
    settings = Settings(data_dir=run.data, database_url=database)
    upgrade(database)
    with open_storage(settings) as storage:
        register_plan(plan, storage.migrations, actor=Actor.system().id)

    with recording_every_session(run.aws):
        try:
            outcome = play_slack_story(
                settings, plan_file, run.console, prepare=run.prepare, inspect=run.inspect
            )
        except Exception as failure:  # DemoFailed, or the bot refusing to start: say what was refused
            refused = []
            if run.kube is not None:
                coverage = rbac_coverage(run.log(), run.manifests, service_account=SERVICE_ACCOUNT)
                refused = [describe(e) for e in coverage.denied]
            pytest.fail(
                f"{type(failure).__name__}: {failure}\n{_listed('requests of the bot refused', refused)}\n"
                f"the story's last lines:\n{run.story()}",
                pytrace=False,
            )

    # (d) the story's outcome: every wave migrated, no AL2 node left, under the bot's own Lease.
    assert (outcome.completed, outcome.last_state, outcome.al2_nodes) == (3, "completed", 0), run.story()
    assert run.lease_holder, "nobody held the Lease: the engine and canary never ran under it"

    log = run.log()
    rbac = rbac_coverage(log, run.manifests, service_account=SERVICE_ACCOUNT)
    aws = policy_coverage(POLICY, run.aws.calls)
    used = summary(log, rbac, aws, run.aws)
    print(used)  # `pytest -s` shows what the run used
    problems = [
        # (a) nothing the bot asked for, itself or in a person's name, was refused.
        *(f"refused under the chart's RBAC: {describe(e)}" for e in rbac.denied),
        # (b) every grant the chart gives was used.
        *(f"granted by the chart, never used by the whole demo: {g} — remove the rule" for g in rbac.unused),
        # (c) every AWS call the bot made is allowed, and every action the policy grants was called.
        *(f"docs/iam-policy.json does not allow the bot's call {c}" for c in aws.denied),
        *(f"docs/iam-policy.json grants {a}; the whole demo never called it — remove it" for a in aws.unused),
    ]
    # (e) Slack: the whole story ran on manifest.yaml's scopes, each one used, none missing.
    assert run.slack is not None
    missing = sorted({str(c.error) for c in run.slack.calls if c.error == "missing_scope"})
    problems += [f"a Slack call was refused for want of a scope: {m}" for m in missing]
    unused_scopes = set(MANIFEST_SCOPES) - NOT_FOR_WEB_API - run.slack.scopes_used
    problems += [f"manifest.yaml asks for {s}; the whole demo never needed it" for s in sorted(unused_scopes)]
    if not run.aws.calls:
        problems.append(f"the bot made no AWS call ({run.aws.ignored} calls came from the sandbox itself)")
    # (f) every change to the cluster was made in a person's name, never as the bot: waves 1 and 2 as
    # alice (their requester), then wave 3 as carol (the approver of bob's request; bob is not mapped),
    # each with the groups the plan gives them, and each cordoning and evicting in that name.
    problems += acted_as(log, [plan.impersonation[SRE], plan.impersonation[TEAM_LEAD]])
    assert problems == [], "\n".join([*problems, "", used])


def acted_as(log: list[JSON], people: list[Impersonation]) -> list[str]:
    """What is wrong with who the bot's changes acted as: `people` in that order (one after the other,
    never interleaved), each with exactly their plan groups, each cordoning nodes and evicting pods;
    and no change made as the bot itself outside its own namespace's Lease and placeholders."""
    problems = []
    own = sorted(
        {
            describe(e)
            for e in log
            if e.get("user") == BOT
            and e.get("verb") in WRITES
            and not (e.get("namespace") == NAMESPACE and e.get("resource") in OWN_NAMESPACE_WRITES)
        }
    )
    problems += [f"a change to the cluster made as the bot itself, not in a person's name: {w}" for w in own]
    acted = [e for e in log if e.get("impersonatedBy") == BOT]
    order = [e["user"] for i, e in enumerate(acted) if i == 0 or acted[i - 1]["user"] != e["user"]]
    if order != [who.user for who in people]:
        problems.append(
            f"the engine's changes should act as {[w.user for w in people]} in turn; they acted as {order}"
        )
    groups = {who.user: sorted(who.groups) for who in people}
    problems += sorted(
        {
            f"a change made as {e['user']} with groups {e['groups']}, not as the plan maps them"
            for e in acted
            if sorted(g for g in e["groups"] if g != "system:authenticated") != groups.get(e["user"])
        }
    )
    for who in people:
        made = {(e["verb"], e["resource"], e["subresource"]) for e in acted if e["user"] == who.user}
        missing = {("patch", "nodes", ""), ("create", "pods", "eviction")} - made
        problems += [f"{who.user} never made {' '.join(m)}" for m in sorted(missing)]
    return problems


WRITES = {"create", "update", "patch", "delete", "deletecollection"}
OWN_NAMESPACE_WRITES = {"leases", "deployments"}  # the Role's: the Lease and the headroom placeholders


def summary(log: list[JSON], rbac: Coverage, aws_coverage: PolicyCoverage, aws: CallRecorder) -> str:
    mine = Counter(
        f"{e['verb']} {e['group'] + '/' if e['group'] else ''}{e['resource']}"
        f"{'/' + e['subresource'] if e['subresource'] else ''}"
        f"{' as ' + e['user'] if e.get('impersonatedBy') == BOT else ''}"
        for e in log
        if BOT in (e.get("user"), e.get("impersonatedBy")) and e.get("resource")
    )
    actions = Counter(c.action for c in aws.calls)
    return "\n".join(
        [
            rbac.report(),
            aws_coverage.report(),
            "the bot's requests:",
            *(f"  {n:6d} {what}" for what, n in sorted(mine.items())),
            f"the bot's AWS calls ({aws.ignored} of the sandbox's own not counted):",
            *(f"  {n:6d} {a}" for a, n in sorted(actions.items())),
        ]
    )
