"""The whole Slack loop for tests: the emulated Slack seeded with the plan's people, migratebot's own
ASGI app under uvicorn on an ephemeral port (as `migratebot serve` runs it), a migrated SQLite
database in tmp_path, and the people who type /migrate and click buttons (signed requests).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from slack_sdk import WebClient

from bot.app import MigrateBot, build_bot
from bot.demo import BotServer
from bot.settings import Settings
from sandbox.slack import (
    SeedBot,
    SeedChannel,
    SeedUser,
    SeedUsergroup,
    SlackActors,
    SlackEmulator,
    SlackRequest,
    WorkspaceSeed,
)
from storage.schema import upgrade

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "plan.yaml"
MIGRATION = "C0MIGRATION"
ALERTS = "C0ALERTS01"
RANDOM = "C0RANDOM01"
CLUSTER = "sandbox-demo"
T = TypeVar("T")

# examples/plan.yaml's people. frank is on-call only through the usergroup S0ONCALL01.
PEOPLE = {
    "alice": "U0SRE00001",
    "bob": "U0SRE00002",
    "carol": "U0LEAD0001",
    "dave": "U0LEAD0002",
    "erin": "U0ONCALL01",
    "frank": "U0ONCALL02",
    "mallory": "U0NOBODY01",
}


def plan_seed(*, scopes: tuple[str, ...] | None = None) -> WorkspaceSeed:
    bot = SeedBot(scopes=scopes)
    users = tuple(SeedUser(uid, name, f"{name.title()} Example") for name, uid in PEOPLE.items())
    everyone = tuple(PEOPLE.values())
    return WorkspaceSeed(
        bot=bot,
        users=users,
        usergroups=(SeedUsergroup("S0ONCALL01", "oncall", "On-call", ("U0ONCALL02",)),),
        channels=(
            SeedChannel(MIGRATION, "eks-migration", (*everyone, bot.user_id)),
            SeedChannel(ALERTS, "eks-alerts", (*everyone, bot.user_id)),
            SeedChannel(RANDOM, "random", everyone),
        ),
    )


@dataclass
class World:
    slack: SlackEmulator
    server: BotServer
    people: SlackActors
    plan_file: Path

    @property
    def bot(self) -> MigrateBot:
        return self.server.bot

    @property
    def events_url(self) -> str:
        return f"{self.server.base}/slack/events"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.server.base}{path}", timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # ---- what people see ------------------------------------------------------------------

    def history(self, channel: str = MIGRATION) -> list[dict[str, Any]]:
        """The channel's messages, newest first, read through the Web API as a person's client would."""
        client = WebClient(token=self.slack.bot_token, base_url=self.slack.api_url)
        messages = client.conversations_history(channel=channel)["messages"]
        assert isinstance(messages, list)
        return messages

    def requests(self) -> list[dict[str, Any]]:
        return [m for m in self.history() if _buttons(m) or "requested" in str(m.get("text", ""))]

    def ephemerals(self, name: str, channel: str = MIGRATION) -> list[str]:
        return [m.text for m in self.slack.workspace.ephemerals(channel, name)]

    def wait_for_ephemeral(self, name: str, count: int = 1, channel: str = MIGRATION) -> list[str]:
        """The person's ephemeral answers once there are at least `count` (answers come after the ack)."""
        self.slack.workspace.wait_for(
            lambda ws: len(ws.ephemerals(channel, name)) >= count or None, timeout=10
        )
        return self.ephemerals(name, channel)

    def settle(self, timeout: float = 10.0) -> None:
        """Every answer the bot started after an ack has been sent."""
        deadline = time.monotonic() + timeout
        while self.bot.background.pending:
            assert time.monotonic() < deadline, "migratebot's background work did not finish"
            time.sleep(0.01)

    # ---- the database --------------------------------------------------------------------

    def waves(self) -> dict[str, str]:
        return {w.name: w.state.value for w in self.bot.repositories.migrations.waves(CLUSTER)}

    def audit_actions(self) -> list[str]:
        return [e.action for e in self.bot.repositories.audit.events()]

    def edit_plan(self, edit: Callable[[str], str]) -> None:
        self.plan_file.write_text(edit(self.plan_file.read_text()))


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements") or []
    ]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id → value of the message's buttons."""
    return {str(b["action_id"]): str(b.get("value", "")) for b in _buttons(message)}


def with_payload(request: SlackRequest, change: Callable[[dict[str, Any]], None]) -> SlackRequest:
    """The same interaction with its payload changed and signed again (a forgery by someone who holds
    the signing secret is impossible; this is a payload copied and replayed through a valid path)."""
    form = urllib.parse.parse_qs(request.body.decode())
    payload = json.loads(form["payload"][0])
    change(payload)
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return SlackRequest.signed(
        request.url, body, request.content_type, request.secret, interaction=request.interaction
    )


@dataclass
class WorldFactory:
    tmp_path: Path

    def __call__(
        self,
        *,
        plan_text: str | None = None,
        scopes: tuple[str, ...] | None = None,
        database_url: str | None = None,
    ) -> Iterator[World]:
        plan_file = self.tmp_path / "plan.yaml"
        if plan_text is None:
            shutil.copy(EXAMPLE_PLAN, plan_file)
        else:
            plan_file.write_text(plan_text)
        url = database_url or f"sqlite:///{self.tmp_path / 'db' / 'migratebot.db'}"
        upgrade(url)
        with SlackEmulator(plan_seed(scopes=scopes)) as slack:
            settings = Settings.model_validate(
                {
                    "database_url": url,
                    "SLACK_BOT_TOKEN": slack.bot_token,
                    "SLACK_SIGNING_SECRET": slack.signing_secret,
                    "slack_api_url": slack.api_url,
                    "plan": plan_file,
                    "executor": False,  # Slack only: no cluster in this world
                }
            )
            with BotServer(build_bot(settings)) as server:
                people = SlackActors(slack.workspace, f"{server.base}/slack/events")
                yield World(slack, server, people, plan_file)


@contextlib.contextmanager
def open_world(tmp_path: Path, *, plan_text: str | None = None) -> Iterator[World]:
    """A world on another plan than the example (tests that need their own plan text)."""
    yield from WorldFactory(tmp_path)(plan_text=plan_text)


def eventually(probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
