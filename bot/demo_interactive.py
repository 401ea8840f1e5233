"""`migratebot demo --interactive`: the demo's world kept running, with the emulated Slack workspace
served as a web page — pick a person, type `/migrate next-wave`, click Approve as a team lead.

The same pieces as bot/demo.py's story (the sandbox's `demo` scenario at 20x emulated time, the
bot's ASGI app under uvicorn on a fresh DATA_DIR/demo.db, the plan with bakes shortened), but nobody
is scripted: people act from the page. The page is the sandbox Slack's own (sandbox/slack/ui.py);
everything it does reaches the bot as a signed request to /slack/events, as real Slack sends it.
After an approval the engine executes the wave in the sandbox, its progress in the request's thread.

A composition root like bot/demo.py: it may import the sandbox, which bot/services may not.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType

from rich.console import Console

from bot.app import MigrateBot
from bot.demo import DemoStack, demo_stack, fix_demo_workloads, lift_do_not_disrupt
from bot.domain.policy import Actor
from bot.engine.events import EngineAlert, Event, WaveProgress
from bot.plan import load_plan
from bot.services.context import open_storage
from bot.services.demo import DEMO_DATABASE, demo_plan_file, demo_settings
from bot.services.plans import register_plan
from bot.settings import Settings
from bot.views.console import engine_event_line
from sandbox.slack import SlackEmulator
from storage.db import redacted_url
from storage.schema import upgrade

log = logging.getLogger(__name__)

# Emulated time runs 20x, as in `migratebot demo`: Karpenter's ~55 s to a Ready node takes ~3 s.
TIME_SCALE = 20.0


class InteractiveDemo:
    """The sandbox and `migratebot serve`'s app (engine and canary included unless `engine=False`),
    started and stopped as a unit.

        with InteractiveDemo(Settings(data_dir=tmp), Path("examples/plan.yaml")) as demo:
            demo.url       # http://127.0.0.1:<port>/ui — the workspace as a web page
            demo.bot       # the running MigrateBot (its repositories read the demo's database)
            demo.cluster   # the plan's cluster name

    Every port is ephemeral and the database lives in `settings.data_dir`, so several run in
    parallel (the tests do).
    """

    def __init__(
        self,
        settings: Settings,
        plan_file: Path,
        console: Console | None = None,
        *,
        engine: bool = True,
    ) -> None:
        self.console = console or Console(quiet=True)
        self.plan_file = demo_plan_file(plan_file, settings.data_dir)
        self.settings = demo_settings(settings)
        self._want_engine = engine
        self._stack: DemoStack | None = None
        self._exit = contextlib.ExitStack()
        self.cluster = ""

    # ---- what callers need -----------------------------------------------------------------------

    @property
    def slack(self) -> SlackEmulator:
        assert self._stack is not None, "not started"
        return self._stack.slack

    @property
    def url(self) -> str:
        return self.slack.ui_url

    @property
    def bot(self) -> MigrateBot:
        assert self._stack is not None, "not started"
        return self._stack.bot

    def people(self) -> list[str]:
        """The scenario's people with their roles: "alice (sre)", "carol (team_lead)" …"""
        assert self._stack is not None, "not started"
        users = self._stack.sandbox.info()["slack"]["users"]
        return [f"{u['name']} ({', '.join(u['roles']) or 'no role'})" for u in users]

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url

    # ---- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> InteractiveDemo:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit.close()  # the bot (engine and canary first), then the sandbox

    def _start(self) -> None:
        say = self.console.print
        self._fresh_database()
        stack = self._exit.enter_context(
            demo_stack(self.settings, self.plan_file, self.console, executor=self._want_engine)
        )
        self._stack = stack
        self.cluster = stack.cluster
        # What an SRE does after reading the readiness report (bot/demo.py tells the story):
        # without it the first wave is not ready and the request is refused.
        fix_demo_workloads(stack.admin)
        say(
            "The workloads that block Bottlerocket in the demo cluster were fixed first "
            "(as `migratebot demo` does): wave 1 is ready to request.",
            markup=False,
        )
        stack.slack.serve_ui = True
        operations = stack.bot.operations
        if operations is not None:
            operations.bus.subscribe(functools.partial(self._show, stack))

    def _show(self, stack: DemoStack, event: Event) -> None:
        """The engine's events on the console; a do-not-disrupt hold is lifted for you (you can't edit
        pods from the page) — then click Resume on the alert in #eks-alerts."""
        if isinstance(event, WaveProgress):
            return  # the request's thread shows progress
        self.console.print(f"  engine: {engine_event_line(event)}", markup=False)
        if isinstance(event, EngineAlert) and event.kind == "held" and lift_do_not_disrupt(stack.admin):
            self.console.print(
                "  on-call lifted the do-not-disrupt hold: click Resume on the alert in #eks-alerts",
                markup=False,
            )

    def _fresh_database(self) -> None:
        """DATA_DIR/demo.db recreated with the plan's waves, as `migratebot demo` leaves it."""
        db_file = (self.settings.data_dir / DEMO_DATABASE).resolve()
        db_file.parent.mkdir(parents=True, exist_ok=True)
        for stale in (db_file, *(db_file.with_name(db_file.name + s) for s in ("-wal", "-shm", "-journal"))):
            stale.unlink(missing_ok=True)
        upgrade(self.database_url)
        with open_storage(self.settings) as storage:
            register_plan(load_plan(self.plan_file), storage.migrations, actor=Actor.system().id)
        self.console.print(
            f"database {redacted_url(self.database_url)} (recreated; read it with "
            f"MIGRATEBOT_DATABASE_URL={self.database_url} migratebot status)",
            markup=False,
        )


def run_interactive(settings: Settings, plan_file: Path, console: Console) -> None:
    """Start everything, print the page's URL and serve until Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with InteractiveDemo(settings, plan_file, console) as demo:
            console.print(
                f"migratebot demo --interactive: open {demo.url} — Ctrl-C stops everything", markup=False
            )
            console.print(f"people you can act as: {', '.join(demo.people())}", markup=False)
            while not stop.wait(0.5):
                pass
            console.print("stopping: engine, bot, sandbox …", markup=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("stopped.", markup=False)
    # Everything is closed; what is left is the sandbox's large heap, which the interpreter's last
    # full collection would walk for ~10 s before exiting. Frozen objects are skipped by it.
    gc.freeze()
