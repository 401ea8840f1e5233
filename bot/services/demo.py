"""`migratebot demo`: the most complete end-to-end path that exists, on the embedded defaults.

Today that is: validate the plan, recreate the demo's own SQLite database (DATA_DIR/demo.db, so a
re-run starts from the same place and the operator's migratebot.db is never touched), register the
plan's waves and show them; then — when the caller passes a `story` (the CLI passes bot/demo.py's,
which starts the sandbox and the bot: services never import either) — play the Slack approval story
and end with the audit chain's state and one line saying what happened and what is not there yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bot.domain.policy import Actor
from bot.plan import load_plan
from bot.services.context import open_storage
from bot.services.plans import register_plan
from bot.settings import Settings
from bot.views.console import render_plan_summary, render_waves
from storage.db import redacted_url
from storage.schema import upgrade

DEMO_DATABASE = "demo.db"


@dataclass(frozen=True)
class StoryOutcome:
    """What the played story left behind, read back from the database and the cluster."""

    wave: str  # "wave 1 (stateless-web)"
    state: str  # the wave's state in the database
    approved_by: tuple[str, ...]
    al2_nodes: int
    completed: int = 0  # waves completed and retired
    last_state: str = ""  # the last wave's state


Story = Callable[[Settings, Path, Console], StoryOutcome]


def demo_settings(settings: Settings) -> Settings:
    """The operator's settings with the database replaced by DATA_DIR/demo.db."""
    path = (settings.data_dir / DEMO_DATABASE).resolve()
    return settings.model_copy(update={"database_url": f"sqlite:///{path}"})


def demo_plan_file(plan_file: Path, data_dir: Path) -> Path:
    """The plan with every bake shortened to 5 s (the demo bakes in seconds, not minutes), written
    beside the demo's database; everything else as the operator wrote it."""
    text = re.sub(r"(?m)^(\s*bake:\s*)\S+", r"\g<1>5s", plan_file.read_text())
    # Canary checks every 2 s (two failures in a row still fail it), so a 5-s bake sees a few.
    text = re.sub(r"(?m)^(\s*interval:\s*)\S+", r"\g<1>2s", text)
    out = (data_dir / "demo-plan.yaml").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def run_demo(settings: Settings, plan_file: Path, console: Console, story: Story | None = None) -> None:
    if story is not None:
        plan_file = demo_plan_file(plan_file, settings.data_dir)
    plan = load_plan(plan_file)
    console.rule(f"plan {plan_file}")
    summary = plan.summary()
    render_plan_summary(console, summary)
    console.print(f"plan hash: {summary.plan_hash}", markup=False)

    operators_db = redacted_url(settings.resolved_database_url)
    settings = demo_settings(settings)
    db_file = (settings.data_dir / DEMO_DATABASE).resolve()
    db_file.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db_file, *(db_file.with_name(db_file.name + s) for s in ("-wal", "-shm", "-journal"))):
        stale.unlink(missing_ok=True)
    url = settings.resolved_database_url
    upgrade(url)
    console.rule(f"database {redacted_url(url)}")
    console.print(
        f"The demo's own database, recreated on every run ({operators_db} is not touched). "
        f"Read it afterwards with MIGRATEBOT_DATABASE_URL={url} migratebot status",
        markup=False,
    )
    with open_storage(settings) as storage:
        migrations = register_plan(plan, storage.migrations, actor=Actor.system().id)
        for migration in migrations:
            render_waves(console, migration, storage.migrations.waves(migration.cluster))

    outcome = story(settings, plan_file, console) if story is not None else None

    with open_storage(settings) as storage:
        if outcome is not None:
            for migration in migrations:
                render_waves(console, migration, storage.migrations.waves(migration.cluster))
        verification = storage.audit.verify()
    chain = "chain intact" if verification.ok else f"CHAIN BROKEN at event {verification.first_broken_seq}"
    console.print(f"audit log: {verification.count} events, {chain}", markup=False)
    waves = len(summary.waves)
    if outcome is None:
        console.print(
            f"demo: {waves} waves planned on {len(migrations)} cluster(s); 0 waves completed. "
            "The sandbox cluster, Slack approvals, drains and canaries join this demo as they land.",
            markup=False,
        )
        return
    decided = (
        f"approved by {', '.join(outcome.approved_by)}"
        if outcome.approved_by
        else f"left {outcome.state} (not approved)"
    )
    console.print(
        f"demo: {outcome.wave} {decided}; {outcome.completed} of {waves} waves completed, "
        f"{outcome.al2_nodes} AL2 nodes left",
        markup=False,
    )
