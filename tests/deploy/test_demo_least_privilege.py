"""The whole demo story runs under exactly the rights the deployment grants: the Helm chart's rendered
RBAC for Kubernetes and docs/iam-policy.json for AWS — nothing refused, nothing granted in vain.

One run of bot/demo.py's play_slack_story (what `migratebot demo` plays: three waves requested in
Slack, approved, executed by `migratebot serve`'s engine, baked by its canary — wave 2's canary
failure paged and resumed — under a Lease election), with the sandbox's cluster-admin grant to the
bot's service account replaced by the chart's ServiceAccount, ClusterRole, Role and bindings before
the bot starts. The chart is rendered with the impersonation an operator sets for
examples/plan.yaml: `impersonate` on the plan's people only. The engine impersonates the SRE who
requested a wave on its mutating calls; those requests are judged by the sandbox's RBAC for the
impersonated identity (the demo scenario's rbac_groups: platform-sre may cordon, evict and change
NodePools), and they use the bot's `impersonate` grants, which is what rbac_coverage counts for them.

Then, from the sandbox API's request log (every request, as the apiserver's audit log records it):
no request of the bot's service account — or made in someone's name by it — got 403, and every
grant the chart gives was used. And from every AWS call the bot's own AwsAdapter code made (botocore's
event hook on each session the bot opens; the sandbox's own boto3 clients are left out): each is
allowed by docs/iam-policy.json on the resources it named, and every action the policy grants was
called.

Grants the demo does not need on its path but a migration needs on another are listed in
NOT_IN_THE_DEMO (RBAC) and NOT_CALLED_BY_THE_DEMO (IAM) with the path and the test that exercises
them; nothing else may go unused, and an entry the demo does use fails the test too.
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

from bot.demo import SRE, DemoStack, play_slack_story
from bot.domain.policy import Actor
from bot.plan import load_plan
from bot.plan.models import Plan
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

# The engine's changes to the cluster act as the person who requested the wave when the plan maps
# them: examples/plan.yaml maps U0SRE00001 (alice@example.com) and U0LEAD0001, and the demo's SRE
# U0SRE00001 requests every wave, so the demo makes them all impersonated. A wave requested and
# approved by people the plan does not map (U0SRE00002, U0LEAD0002), or a plan without
# `impersonation:`, makes them as the bot itself, with the chart's own grants for them.
AS_ITSELF = "made as alice@example.com in the demo; as the bot for unmapped people"
ADAPTER_TEST = "test_rbac_in_sandbox.py::test_every_adapter_call_is_allowed_and_every_grant_serves_one"
TODAY_TEST = "test_rbac_in_sandbox.py::test_the_bots_work_today_runs_under_the_charts_rbac_without_a_403"

# Grants the whole demo leaves unused, each with the path that needs it and the test that takes it
# (Grant.key → why). A new entry needs a named test that exercises the grant, or the grant goes; an
# entry the demo does use, or that names nothing granted, fails the test.
NOT_IN_THE_DEMO: dict[str, str] = {
    "patch nodes": f"cordon, {AS_ITSELF} — {TODAY_TEST}",
    "create pods/eviction": f"the drain's evictions, {AS_ITSELF} — {TODAY_TEST}",
    "create karpenter.sh/nodepools": f"the replacement NodePools, {AS_ITSELF} — {ADAPTER_TEST}",
    "patch karpenter.sh/nodepools": f"drift (wave 2), {AS_ITSELF} — {TODAY_TEST}",
    "create karpenter.k8s.aws/ec2nodeclasses": f"the target EC2NodeClass, {AS_ITSELF} — {TODAY_TEST}",
    "patch karpenter.k8s.aws/ec2nodeclasses": (
        "when the EC2NodeClass exists and differs from the plan's target (the demo creates it once); "
        f"as the bot for unmapped people — {ADAPTER_TEST}"
    ),
    "delete karpenter.sh/nodeclaims": (
        "retiring a drained Karpenter node whose NodeClaim is still there (in the demo, drift has "
        f"already replaced them); as the bot for unmapped people — {ADAPTER_TEST}"
    ),
    'impersonate users "carol@example.com"': (
        "examples/plan.yaml maps team lead U0LEAD0001 to carol@example.com: the engine acts as the "
        "approver when the requester is unmapped, and the demo's never is — "
        "test_rbac_in_sandbox.py::test_impersonation_is_granted_for_the_configured_identities_only "
        "exercises this rule's per-name grants"
    ),
    'impersonate groups "platform-leads"': "carol@example.com's group in examples/plan.yaml: as above",
}

# The same for docs/iam-policy.json: action → why the demo does not call it, and the test that does.
NOT_CALLED_BY_THE_DEMO: dict[str, str] = {
    "iam:GetRolePolicy": (
        "read for a node role's inline policies, and the demo's node roles have none — "
        "test_iam_policy.py::test_every_adapter_call_against_the_sandbox_is_allowed_and_every_grant_is_used "
        "puts one on the node role and reads it"
    ),
}


def impersonation_values(plan: Plan) -> JSON:
    """The chart's `impersonation` for a plan: exactly the identities and groups the plan maps."""
    users = sorted({who.user for who in plan.impersonation.values()})
    groups = sorted({g for who in plan.impersonation.values() for g in who.groups})
    return {"impersonation": {"enabled": bool(users), "users": users, "groups": groups}}


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
    run = Run(tmp_path, impersonation_values(plan))
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
    rbac = rbac_coverage(
        log, run.manifests, service_account=SERVICE_ACCOUNT, needed_elsewhere=NOT_IN_THE_DEMO
    )
    aws = policy_coverage(POLICY, run.aws.calls, needed_elsewhere=NOT_CALLED_BY_THE_DEMO)
    used = summary(log, rbac, aws, run.aws)
    print(used)  # `pytest -s` shows what the run used
    problems = [
        # (a) nothing the bot asked for, itself or in a person's name, was refused.
        *(f"refused under the chart's RBAC: {describe(e)}" for e in rbac.denied),
        # (b) every grant the chart gives was used, or is needed on a path NOT_IN_THE_DEMO names.
        *(
            f"granted by the chart, never used by the whole demo: {g} — remove the rule, or name the "
            "path and the test that needs it in NOT_IN_THE_DEMO"
            for g in rbac.unused
        ),
        *(f"NOT_IN_THE_DEMO is stale: {s}" for s in rbac.stale_excuses),
        # (c) every AWS call the bot made is allowed, and every action the policy grants was called.
        *(f"docs/iam-policy.json does not allow the bot's call {c}" for c in aws.denied),
        *(
            f"docs/iam-policy.json grants {a}; the whole demo never called it — remove it, or name the "
            "path and the test that needs it in NOT_CALLED_BY_THE_DEMO"
            for a in aws.unused
        ),
        *(f"NOT_CALLED_BY_THE_DEMO is stale: {s}" for s in aws.stale_excuses),
    ]
    # (e) Slack: the whole story ran on manifest.yaml's scopes, each one used, none missing.
    assert run.slack is not None
    missing = sorted({str(c.error) for c in run.slack.calls if c.error == "missing_scope"})
    problems += [f"a Slack call was refused for want of a scope: {m}" for m in missing]
    unused_scopes = set(MANIFEST_SCOPES) - NOT_FOR_WEB_API - run.slack.scopes_used
    problems += [f"manifest.yaml asks for {s}; the whole demo never needed it" for s in sorted(unused_scopes)]
    if not run.aws.calls:
        problems.append(f"the bot made no AWS call ({run.aws.ignored} calls came from the sandbox itself)")
    impersonated = {
        (e["user"], *sorted(g for g in e["groups"] if g != "system:authenticated"))
        for e in log
        if e.get("impersonatedBy") == BOT
    }
    requester = plan.impersonation[SRE]
    if impersonated != {(requester.user, *sorted(requester.groups))}:
        problems.append(
            f"the engine's changes should act as {requester.user}, the SRE who requested every wave; "
            f"they acted as {sorted(impersonated)}"
        )
    assert problems == [], "\n".join([*problems, "", used])


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
