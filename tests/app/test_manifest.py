"""manifest.yaml asks for exactly the OAuth scopes migratebot uses — proven against the sandbox Slack,
which refuses any call whose scope the bot token lacks and records every scope needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from bot_world import MIGRATION, World, WorldFactory

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yaml").read_text())
BOT_SCOPES = tuple(MANIFEST["oauth_config"]["scopes"]["bot"])
# Granted with the app's installation for the slash command itself; no Web API method needs it.
NOT_FOR_WEB_API = {"commands"}


@pytest.fixture
def scoped_world(tmp_path: Path) -> Iterator[World]:
    yield from WorldFactory(tmp_path)(scopes=tuple(s for s in BOT_SCOPES if s not in NOT_FOR_WEB_API))


def test_the_manifest_declares_the_command_interactivity_and_events() -> None:
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["command"] == "/migrate"
    settings = MANIFEST["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    for url in (command["url"], settings["interactivity"]["request_url"]):
        assert url.endswith("/slack/events")


def test_every_flow_works_with_exactly_the_manifest_scopes(scoped_world: World) -> None:
    world, people = scoped_world, scoped_world.people
    people["frank"].command("/migrate", "pause", channel=MIGRATION)  # a usergroup lookup
    people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    world.wait_for_ephemeral("alice")
    ts = world.slack.workspace.channel_messages(MIGRATION)[0].ts
    people["carol"].click(channel=MIGRATION, ts=ts, action_id="wave_request.approve")
    world.wait_for_ephemeral("carol")
    people["alice"].command("/migrate", "status", channel=MIGRATION)
    people["erin"].open_home()
    world.settle()
    assert world.waves()["stateless-web"] == "approved"
    assert world.slack.workspace.home_view("erin") is not None
    failed = [(c.method, c.error) for c in world.slack.calls if c.error]
    assert failed == []
    # Reports (files:write) need the cluster this Slack-only world lacks: the whole demo, which uses
    # every scope, is tests/deploy/test_demo_least_privilege.py.
    assert world.slack.scopes_used == set(BOT_SCOPES) - NOT_FOR_WEB_API - {"files:write"}
