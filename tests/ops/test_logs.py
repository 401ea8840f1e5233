"""What an operator reads in the logs of `migratebot serve`: one JSON object per line, the Slack
request each line belongs to (the work it spawned included), and never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from bot_world import MIGRATION, World, eventually

from bot.logs import configure_logging, current_request_id, request_scope, secret_values

log = logging.getLogger("tests.ops")


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """configure_logging as `migratebot serve` calls it, into a buffer; the root logger is restored."""
    root = logging.getLogger()
    level = root.level
    capture = Captured()
    handler = configure_logging("INFO", "json", stream=capture.stream)
    try:
        yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)


def header(headers: dict[str, str], name: str) -> str:
    return next(v for k, v in headers.items() if k.lower() == name.lower())


def test_a_command_and_the_work_it_spawned_log_under_the_request_id_its_answer_carries(
    world: World, captured: Captured
) -> None:
    # Slack refuses the wave request's post: the warning comes from work spawned after the ack.
    world.slack.fail("chat.postMessage", times=1, status=400)
    asked = world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    other = world.people["bob"].command("/migrate", "status", channel=MIGRATION)
    request_id = header(asked.headers, "x-request-id")
    assert request_id != header(other.headers, "x-request-id")

    eventually(lambda: any("could not post the request" in line["message"] for line in captured.lines()))
    world.settle()
    mine = [line for line in captured.lines() if line.get("request_id") == request_id]
    [answered] = [line for line in mine if line["message"].startswith("Slack command answered 200 in ")]
    assert answered["logger"] == "handlers.front_door"
    assert answered["level"] == "INFO" and answered["ts"].endswith("Z")
    assert (answered["verb"], answered["user"], answered["channel"]) == ("next-wave", "U0SRE00001", MIGRATION)
    assert any(line["message"].startswith("slash command ran in ") for line in mine)
    [spawned] = [line for line in mine if line["logger"] == "handlers.commands"]
    assert spawned["level"] == "WARNING"
    assert spawned["message"].startswith("could not post the request for wave 1 (stateless-web)")
    # bob's status is another request: none of its lines carry alice's id.
    assert not [line for line in mine if line.get("verb") == "status"]


def test_work_spawned_in_tasks_and_worker_threads_keeps_the_request_id(captured: Captured) -> None:
    async def request() -> None:
        with request_scope("req-1"):

            async def later() -> None:
                await asyncio.sleep(0)
                log.info("in a task")

            task = asyncio.create_task(later())
            await asyncio.to_thread(log.info, "in a worker thread")
            await task
        log.info("after the request")

    asyncio.run(request())
    lines = {line["message"]: line.get("request_id") for line in captured.lines()}
    assert lines == {"in a task": "req-1", "in a worker thread": "req-1", "after the request": None}
    assert current_request_id() is None


def test_secrets_never_reach_a_log_line(world: World) -> None:
    settings = world.bot.settings
    assert settings.slack_signing_secret is not None and settings.slack_bot_token is not None
    signing_secret = settings.slack_signing_secret.get_secret_value()
    token = settings.slack_bot_token.get_secret_value()
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", secrets=secret_values(settings), stream=stream)
    try:
        log.warning("signature checked with %s", signing_secret)
        log.warning("database at postgresql+psycopg://bot:hunter2@db.internal:5432/mb")
        log.warning("Prometheus at https://reader:s3cretpass@prom.internal/api")
        log.warning("posting", extra={"headers": {"Authorization": f"Bearer {token}"}, "channel": MIGRATION})
        try:
            raise RuntimeError(f"Slack refused token {token}")
        except RuntimeError:
            log.exception("the post failed")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)

    text = stream.getvalue()
    for secret in (signing_secret, token, "hunter2", "s3cretpass"):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"] == "signature checked with [redacted]"
    assert lines[1]["message"] == "database at [redacted]db.internal:5432/mb"
    assert lines[2]["message"] == "Prometheus at [redacted]prom.internal/api"
    assert lines[3]["headers"] == {"Authorization": "[redacted]"} and lines[3]["channel"] == MIGRATION
    assert "RuntimeError: Slack refused token [redacted]" in lines[4]["exc_info"]


def test_text_format_for_a_terminal_carries_the_request_id_and_masks_secrets() -> None:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("INFO", "text", secrets=["0123456789abcdef"], stream=stream)
    try:
        with request_scope("req-7"):
            log.info("signed with 0123456789abcdef")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
    line = stream.getvalue().strip()
    assert line.endswith("INFO tests.ops [req req-7] signed with [redacted]")


def test_an_unknown_format_is_refused_with_the_setting_to_fix() -> None:
    with pytest.raises(ValueError, match="MIGRATEBOT_LOG_FORMAT"):
        configure_logging("INFO", "yaml", stream=io.StringIO())
