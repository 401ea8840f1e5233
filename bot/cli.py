"""The `migratebot` command. Thin: parse arguments, call one service, render with rich."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console

from bot.domain.errors import DomainError
from bot.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

# Piped output (CI logs, `| less`) gets a wide page instead of rich's 80-column default.
_PIPED_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_PIPED_WIDTH)

# Exit codes: 0 done, 1 a check failed (audit verify), 2 bad input / refused / capability not landed.
EXIT_CHECK_FAILED = 1
EXIT_REFUSED = 2


def refuses_on_domain_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A DomainError is a message for a person: print it, exit 2, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True)
            sys.exit(EXIT_REFUSED)

    return wrapper


def not_landed(command: str, capability: str) -> None:
    err.print(
        f"`migratebot {command}` is not available yet: it arrives with {capability}. Nothing was done.",
        markup=False,
    )
    sys.exit(EXIT_REFUSED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="migratebot")
def main() -> None:
    """migratebot: move EKS worker nodes from Amazon Linux 2 to Bottlerocket, wave by wave, from Slack."""


# ---- plan -----------------------------------------------------------------------------------


@main.group()
def plan() -> None:
    """Work with plan files."""


@plan.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def plan_validate(file: Path) -> None:
    """Check FILE; print every problem with file:line:column, or a summary and the plan hash."""
    from bot.plan import PlanInvalid, load_plan, plan_hash

    try:
        parsed = load_plan(file)
    except PlanInvalid as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        count = len(exc.problems)
        err.print(f"{count} problem{'s' if count != 1 else ''} in {file}: nothing was loaded.", markup=False)
        sys.exit(EXIT_REFUSED)
    from bot.views.console import render_plan_summary

    render_plan_summary(out, parsed.summary())
    out.print(f"{file}: valid. plan hash: {plan_hash(parsed)}", markup=False)


# ---- database -------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The migration database."""


@db.command("upgrade")
@refuses_on_domain_errors
def db_upgrade() -> None:
    """Create or upgrade the schema to this version of migratebot."""
    from storage.db import redacted_url
    from storage.schema import current_revision, upgrade

    url = Settings().resolved_database_url
    upgrade(url)
    out.print(f"database {redacted_url(url)} is at revision {current_revision(url)} (current)", markup=False)


@main.command()
@refuses_on_domain_errors
def status() -> None:
    """Each cluster's migration and its waves, from the database."""
    from bot.services.context import open_storage
    from bot.views.console import render_status

    with open_storage(Settings()) as storage:
        render_status(out, storage.migrations.list(), storage.migrations.waves)


@main.command()
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The plan file (default: MIGRATEBOT_PLAN).",
)
@refuses_on_domain_errors
def engine(plan_file: Path | None) -> None:
    """Run the migration engine without Slack: it executes approved waves, verifies, bakes, retires
    and rolls back, holding the executor lock in the database (a second engine waits)."""
    import datetime as dt
    import signal
    import threading

    from bot.engine.events import EventBus
    from bot.engine.executor import EngineSettings
    from bot.plan import load_plan
    from bot.services.context import open_storage
    from bot.services.engine import EngineRunner
    from bot.views.console import print_engine_event

    settings = Settings()
    path = plan_file or settings.plan
    if path is None:
        raise click.UsageError("no plan: pass --plan FILE or set MIGRATEBOT_PLAN")
    plan = load_plan(path)
    with open_storage(settings) as storage:
        bus = EventBus()
        bus.subscribe(lambda event: print_engine_event(err, event))
        runner = EngineRunner(
            plan, storage, bus, EngineSettings(lock_ttl=dt.timedelta(seconds=settings.engine_lock_ttl))
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        runner.start()
        err.print(f"migratebot engine running for {', '.join(c.name for c in plan.clusters)}", markup=False)
        try:
            stop.wait()
        finally:  # Ctrl-C or SIGTERM: in-flight evictions finish, the lock is released
            runner.close()


# ---- audit ----------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command("verify")
@refuses_on_domain_errors
def audit_verify() -> None:
    """Recompute the chain; exit 1 naming the first broken event."""
    from bot.services.context import open_storage

    with open_storage(Settings()) as storage:
        result = storage.audit.verify()
    if result.ok:
        out.print(f"{result.count} events, chain intact", markup=False)
        return
    err.print(f"audit chain broken at event {result.first_broken_seq}: {result.reason}", markup=False)
    sys.exit(EXIT_CHECK_FAILED)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
@refuses_on_domain_errors
def audit_export(fmt: str, output: Path | None) -> None:
    """Every audit event in order, one JSON object per line."""
    from bot.domain.canonical import canonical_json
    from bot.services.context import open_storage

    with open_storage(Settings()) as storage:
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for event in storage.audit.export():
                stream.write(canonical_json(event) + "\n")
        finally:
            if output:
                stream.close()


# ---- running --------------------------------------------------------------------------------


@main.command()
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The plan file (default: MIGRATEBOT_PLAN).",
)
@refuses_on_domain_errors
def serve(plan_file: Path | None) -> None:
    """Run the bot: Slack events on MIGRATEBOT_HTTP_HOST:PORT (/slack/events, /healthz, /readyz,
    /metrics), or Socket Mode when SLACK_APP_TOKEN is set."""
    from bot.logs import configure_logging, secret_values
    from bot.services.context import open_storage

    settings = Settings()
    # One JSON object per line for log collectors (MIGRATEBOT_LOG_FORMAT=text for a terminal), every
    # configured secret masked.
    configure_logging(settings.log_level, settings.log_format or "json", secrets=secret_values(settings))
    with open_storage(settings):
        pass  # refuses an un-migrated or newer database before anything else starts
    from bot.app import build_bot, serve

    bot = build_bot(settings, plan_file)
    err.print(
        f"migratebot listening on http://{settings.http_host}:{settings.http_port}/slack/events "
        f"(plan {bot.plans.path}, hash {bot.plans.latest().summary().plan_hash[:12]})",
        markup=False,
    )
    serve(bot)


@main.command()
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path),
    default=Path("examples/plan.yaml"),
    show_default=True,
)
# ---- demo --interactive (bot/demo_interactive.py) ----
@click.option(
    "--interactive",
    is_flag=True,
    help="Keep the sandbox and the bot running and serve the emulated Slack workspace as a web page "
    "(http://127.0.0.1:PORT/ui): act as any person, type /migrate, click Approve; Ctrl-C stops.",
)
# ---- end demo --interactive ----
@click.option(
    "--waves",
    type=click.IntRange(min=1),
    default=None,
    help="Play the story up to this wave and stop there (default: every wave of the plan).",
)
@refuses_on_domain_errors
def demo(plan_file: Path, interactive: bool, waves: int | None) -> None:
    """Play the migration story end to end on the embedded defaults: the plan in DATA_DIR/demo.db
    (recreated each run), the sandbox, and the bot answering Slack requests and approvals.
    With --interactive, nobody is scripted: you play the people from a browser."""
    if interactive:
        from bot.demo_interactive import run_interactive

        run_interactive(Settings(), plan_file, out)
        return
    from bot.demo import play_slack_story
    from bot.services.demo import run_demo

    run_demo(Settings(), plan_file, out, story=functools.partial(play_slack_story, waves=waves))


@main.command()
@click.option("--scenario", default="demo", show_default=True)
@click.option("--kubeconfig-out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option(
    "--time-scale", type=float, default=1.0, show_default=True, help="Emulated seconds per real second."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address the AWS and admin endpoints bind."
)
def sandbox(scenario: str, kubeconfig_out: Path | None, time_scale: float, host: str) -> None:
    """Start the emulated EKS cluster, AWS and Slack; print their endpoints; serve until Ctrl-C."""
    from sandbox.main import run_sandbox
    from sandbox.scenarios import ScenarioNotFound

    if time_scale <= 0:
        err.print(f"error: --time-scale must be > 0, got {time_scale}", markup=False)
        sys.exit(EXIT_REFUSED)
    try:
        code = run_sandbox(
            scenario,
            kubeconfig_out,
            time_scale,
            host=host,
            emit=lambda line: print(line, flush=True),
        )
    except ScenarioNotFound as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_REFUSED)
    sys.exit(code)


@main.command()
@click.argument("kind", type=click.Choice(["readiness", "security"]))
@click.option("--wave", type=int, required=True, help="Wave number, from 1, in plan order.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The plan file (default: MIGRATEBOT_PLAN).",
)
@click.option("--cluster", default=None, help="The plan's cluster (default: its first).")
@refuses_on_domain_errors
def report(kind: str, wave: int, fmt: str, plan_file: Path | None, cluster: str | None) -> None:
    """A wave's readiness or AL2-vs-Bottlerocket security summary, read from the cluster (KUBECONFIG,
    the plan's kube_context) and AWS (boto3's chain, AWS_ENDPOINT_URL)."""
    from bot.adapters.errors import AdapterError
    from bot.plan import PlanInvalid, load_plan
    from bot.reports.render import render
    from bot.services.reports import open_adapters, readiness_report, resolve_wave, security_report

    path = plan_file or Settings().plan
    if path is None:
        err.print("error: no plan: pass --plan FILE or set MIGRATEBOT_PLAN", markup=False)
        sys.exit(EXIT_REFUSED)
    try:
        plan = load_plan(path)
    except PlanInvalid as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        err.print(
            f"{path}: the plan is invalid; fix it first (migratebot plan validate {path})", markup=False
        )
        sys.exit(EXIT_REFUSED)
    ref = resolve_wave(plan, wave, cluster)
    try:
        kube, aws = open_adapters(ref.cluster)
        if kind == "readiness":
            result = render(readiness_report(plan, wave, kube, aws, cluster=cluster), fmt)
        else:
            result = render(security_report(plan, wave, kube, aws, cluster=cluster), fmt)
    except AdapterError as exc:
        err.print(f"error: could not read cluster {ref.cluster.name}: {exc}", markup=False)
        sys.exit(EXIT_CHECK_FAILED)
    except Exception as exc:  # kubeconfig problems come from the client's loader
        if type(exc).__name__ != "ConfigException":
            raise
        err.print(
            f"error: no usable kubeconfig context {ref.cluster.kube_context!r} for cluster "
            f"{ref.cluster.name}: {exc} — set KUBECONFIG to a file with that context",
            markup=False,
        )
        sys.exit(EXIT_REFUSED)
    sys.stdout.write(result)


if __name__ == "__main__":  # pragma: no cover
    main()
