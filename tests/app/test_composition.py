"""The composition root builds independent bots; Socket Mode is chosen by SLACK_APP_TOKEN."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from bot_world import EXAMPLE_PLAN
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.app import ConfigurationError, build_bot, socket_mode_handler
from bot.settings import Settings
from storage.schema import upgrade


def _settings(tmp_path: Path, **extra: object) -> Settings:
    url = f"sqlite:///{tmp_path / 'migratebot.db'}"
    upgrade(url)
    plan = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE_PLAN, plan)
    return Settings.model_validate(
        {
            "database_url": url,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "secret",
            "slack_api_url": "http://127.0.0.1:9/api/",
            "plan": plan,
            "executor": False,  # no cluster here: the Slack surface only
            **extra,
        }
    )


def test_http_mode_by_default_and_socket_mode_with_an_app_token(tmp_path: Path) -> None:
    http = build_bot(_settings(tmp_path))
    socket = build_bot(_settings(tmp_path, SLACK_APP_TOKEN="xapp-1-test"))

    async def handlers() -> tuple[object, object]:
        # Built on the running loop (as the ASGI lifespan does): the handler opens an aiohttp session.
        built = socket_mode_handler(socket)
        assert isinstance(built, AsyncSocketModeHandler)
        assert built.app is socket.bolt
        await built.client.close()
        return socket_mode_handler(http), built

    try:
        none, built = asyncio.run(handlers())
        assert none is None and isinstance(built, AsyncSocketModeHandler)
        # Two bots never share an app, listeners or state: nothing is registered at import time.
        assert http.bolt is not socket.bolt and http.background is not socket.background
        assert str(http.bolt.client.base_url) == "http://127.0.0.1:9/api/"
        assert http.bolt.process_before_response is True
    finally:
        http.close()
        socket.close()


def test_the_plan_is_registered_when_the_bot_is_built(tmp_path: Path) -> None:
    bot = build_bot(_settings(tmp_path))
    try:
        waves = bot.repositories.migrations.waves("sandbox-demo")
        assert [w.name for w in waves] == ["stateless-web", "karpenter-general", "batch-and-data"]
    finally:
        bot.close()


def test_missing_credentials_are_named(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"slack_signing_secret": None, "plan": None})
    with pytest.raises(ConfigurationError, match=r"SLACK_SIGNING_SECRET, --plan FILE or MIGRATEBOT_PLAN"):
        build_bot(settings)


def test_serve_without_a_cluster_names_kubeconfig_and_the_switch_and_registers_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = _settings(tmp_path, executor=True)
    with pytest.raises(ConfigurationError) as refused:
        build_bot(settings)
    message = str(refused.value)
    assert "engine and the canary" in message
    assert "KUBECONFIG" in message and "MIGRATEBOT_EXECUTOR=off" in message, message
    # Refused before the plan was registered: the database holds no migration.
    from storage.db import Database
    from storage.repositories import Repositories

    database = Database(settings.resolved_database_url)
    try:
        assert Repositories.over(database).migrations.list() == []
    finally:
        database.dispose()
