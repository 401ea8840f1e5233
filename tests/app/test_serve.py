"""`migratebot serve` as an operator runs it: the console script, environment configuration, the
emulated Slack as MIGRATEBOT_SLACK_API_URL, and a person typing /migrate at it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_world import EXAMPLE_PLAN, MIGRATION, plan_seed

from sandbox.slack import SlackActors, SlackEmulator


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _executable() -> str:
    found = shutil.which("migratebot", path=str(Path(sys.executable).parent))
    assert found, "the migratebot console script is not installed in this venv: run `make test`"
    return found


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIGRATEBOT_", "SLACK_"))}
    env["MIGRATEBOT_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(plan_seed()) as emulator:
        yield emulator


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def test_serve_answers_slack_and_health_checks_and_stops_on_sigterm(
    env: dict[str, str], slack: SlackEmulator, tmp_path: Path
) -> None:
    exe = _executable()
    assert subprocess.run([exe, "db", "upgrade"], env=env, capture_output=True, timeout=60).returncode == 0
    port = _free_port()
    env.update(
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=slack.signing_secret,
        MIGRATEBOT_SLACK_API_URL=slack.api_url,
        MIGRATEBOT_HTTP_HOST="127.0.0.1",
        MIGRATEBOT_HTTP_PORT=str(port),
        MIGRATEBOT_PLAN=str(EXAMPLE_PLAN),
        MIGRATEBOT_EXECUTOR="off",  # Slack only: this test has no cluster (the demo runs serve's executor)
    )
    server = subprocess.Popen(
        [exe, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while _get(f"{base}/healthz") != 200:
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "migratebot serve did not come up"
            time.sleep(0.05)
        assert _get(f"{base}/readyz") == 200
        people = SlackActors(slack.workspace, f"{base}/slack/events")
        assert people["alice"].command("/migrate", "next-wave", channel=MIGRATION).acked_in_time
        slack.workspace.wait_for(lambda ws: ws.channel_messages(MIGRATION) or None, timeout=10)
        assert (
            people.send(people["bob"].build_command("/migrate", "status", channel=MIGRATION).stale()).status
            == 401
        )
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status 128+15 / -15).
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    assert f"listening on http://127.0.0.1:{port}/slack/events" in stderr
    status = subprocess.run([exe, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert "requested" in status.stdout


def test_serve_refuses_to_start_without_the_slack_credentials(env: dict[str, str]) -> None:
    exe = _executable()
    assert subprocess.run([exe, "db", "upgrade"], env=env, capture_output=True, timeout=60).returncode == 0
    result = subprocess.run(
        [exe, "serve", "--plan", str(EXAMPLE_PLAN)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "SLACK_SIGNING_SECRET" in result.stderr
