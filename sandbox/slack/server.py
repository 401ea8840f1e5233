"""Run the emulated Slack in-process: uvicorn on 127.0.0.1, an ephemeral port, a background thread."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from sandbox.serving import ThreadedUvicorn
from sandbox.slack.actors import SlackActors
from sandbox.slack.api import CallRecord, SlackApi
from sandbox.slack.faults import FaultKind, FaultRule
from sandbox.slack.seed import WorkspaceSeed, demo_seed
from sandbox.slack.transcript import transcript
from sandbox.slack.workspace import Workspace


class SlackEmulator:
    """The emulated Slack as a context manager.

        with SlackEmulator(demo_seed()) as slack:
            client = WebClient(token=slack.bot_token, base_url=slack.api_url)

    `api_url` ends with "/api/": slack_sdk joins base_url and the method name. `workspace` is the
    in-process store (messages, views, files) for actors, transcripts and assertions; `admin_url`
    serves the same over HTTP with `admin_token`.
    """

    def __init__(
        self,
        seed: WorkspaceSeed | None = None,
        *,
        admin_token: str | None = None,
        port: int = 0,
        fault_seed: int = 0,
        request_url: str | None = None,
    ) -> None:
        self.workspace = Workspace(seed or demo_seed())
        self.api = SlackApi(self.workspace, admin_token=admin_token, fault_seed=fault_seed)
        self.api.request_url = request_url
        self._port = port
        self._runner: ThreadedUvicorn | None = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.workspace.base_url = self.url
        self._runner = ThreadedUvicorn(self.api.app, sock, name=f"sandbox-slack-{port}")
        self._runner.start()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        self._runner = None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- what clients need ----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def admin_url(self) -> str:
        return f"{self.url}/admin"

    @property
    def admin_token(self) -> str:
        return self.api.admin_token

    @property
    def bot_token(self) -> str:
        return self.workspace.seed.bot.tokens[0]

    @property
    def signing_secret(self) -> str:
        return self.workspace.signing_secret

    @property
    def calls(self) -> list[CallRecord]:
        return list(self.api.calls)

    @property
    def scopes_used(self) -> set[str]:
        """Every OAuth scope the bot's calls needed so far (compare with manifest.yaml)."""
        return set(self.api.scopes_used)

    def calls_to(self, method: str) -> list[CallRecord]:
        return [c for c in self.api.calls if c.method == method]

    @property
    def request_url(self) -> str | None:
        """The app's Request URL (slash commands, interactivity, events), as set in app settings."""
        return self.api.request_url

    @request_url.setter
    def request_url(self, value: str | None) -> None:
        self.api.request_url = value

    def people(self, request_url: str | None = None) -> SlackActors:
        """The workspace's people, sending to `request_url` or the configured Request URL."""
        url = request_url or self.api.request_url
        if not url:
            raise ValueError("no request URL: pass one or set SlackEmulator.request_url")
        return SlackActors(self.workspace, url)

    def transcript(self, channel: str, *, times: bool = False) -> str:
        return transcript(self.workspace, channel, times=times)

    def snapshot(self) -> dict[str, Any]:
        """The whole workspace as plain JSON (what /admin/state serves)."""
        return self.workspace.snapshot()

    # ---- fault injection ---------------------------------------------------------------------------

    def rate_limit(
        self, method: str = "*", *, times: int | None = 1, fraction: float = 1.0, retry_after: int = 1
    ) -> FaultRule:
        """Answer the next `times` calls of `method` (None: all until cleared) with 429 + Retry-After."""
        return self.api.faults.add(
            FaultRule(FaultKind.RATELIMITED, method, times, fraction, retry_after=retry_after)
        )

    def fail(
        self, method: str = "*", *, times: int | None = 1, fraction: float = 1.0, status: int = 500
    ) -> FaultRule:
        """Answer calls of `method` with a server error (500 internal_error, 503 service_unavailable)."""
        return self.api.faults.add(FaultRule(FaultKind.SERVER_ERROR, method, times, fraction, status=status))

    def slow(self, method: str = "*", seconds: float = 0.5, *, times: int | None = None) -> FaultRule:
        """Delay calls of `method` by `seconds` before answering them normally."""
        return self.api.faults.add(FaultRule(FaultKind.LATENCY, method, times, seconds=seconds))

    def clear_faults(self) -> None:
        self.api.faults.clear()

    @property
    def enforce_rate_limits(self) -> bool:
        """Slack's per-method tiers (limits.py): off by default, on for tests of the bot's pacing."""
        return self.api.limits.enabled

    @enforce_rate_limits.setter
    def enforce_rate_limits(self, value: bool) -> None:
        self.api.limits.enabled = value
        self.api.limits.reset()

    # ---- the interactive page (ui.py) ---------------------------------------------------------------

    @property
    def ui_url(self) -> str:
        return f"{self.url}/ui"

    @property
    def serve_ui(self) -> bool:
        """GET /ui: the workspace as a web page whose people act through signed requests to the app.
        Off by default: the page lets whoever reaches it act as anyone."""
        return self.api.ui.enabled

    @serve_ui.setter
    def serve_ui(self, value: bool) -> None:
        self.api.ui.enabled = value

    # ---- strictness ------------------------------------------------------------------------------

    @property
    def strict_text_length(self) -> bool:
        return self.api.strict_text_length

    @strict_text_length.setter
    def strict_text_length(self, value: bool) -> None:
        self.api.strict_text_length = value
