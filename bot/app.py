"""The composition root: settings → database → repositories → services → Bolt app → ASGI app.

    bot = build_bot(Settings(), plan_file)
    uvicorn.run(bot.asgi, host=…, port=…)

Server model (DESIGN.md's traps, chosen on purpose): one asyncio event loop under uvicorn runs
Bolt's AsyncApp with process_before_response=True. Listeners acknowledge at once and hand the work
to a background task on the same loop; every blocking call (SQLAlchemy, the plan file) runs in a
worker thread (asyncio.to_thread), and Slack is called with the AsyncWebClient — so no request ever
waits behind another's database or Web API call, and nothing deadlocks when the Slack being called
is served by the same process. With SLACK_APP_TOKEN, Socket Mode carries the same app instead of
/slack/events (which then stays for health and metrics only).

Slash commands are acknowledged by handlers/front_door.py as soon as their signature checks out and
run through Bolt right after the burst; spawned work waits for the acks to calm down
(handlers/background.py). Ack latency is measured by bench/slack_ack.py (bursts of 50 concurrent
signed slash commands beside a bare ASGI endpoint in the same run; figures in BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.adapters.errors import AdapterError
from bot.adapters.slack import SlackDirectory, build_client
from bot.domain.errors import DomainError
from bot.services.requests import PlanSource, WaveMessages, WaveRequests
from bot.services.roles import RoleResolver
from bot.services.waves import WaveService
from bot.settings import Settings
from handlers import actions, commands, home, middleware
from handlers.background import Background
from handlers.front_door import FrontDoor
from handlers.metrics import Metrics
from handlers.upkeep import Upkeep
from storage.db import Database
from storage.repositories import Repositories
from storage.schema import check_current, open_current

log = logging.getLogger(__name__)


class ConfigurationError(DomainError):
    """A setting the bot can't run without is missing or wrong."""


@dataclass
class MigrateBot:
    """Everything `migratebot serve` runs, built once; `close()` releases the database."""

    settings: Settings
    database: Database
    repositories: Repositories
    plans: PlanSource
    requests: WaveRequests
    roles: RoleResolver
    directory: SlackDirectory
    metrics: Metrics
    background: Background
    bolt: AsyncApp
    asgi: Starlette
    app_token: str | None = None
    socket_mode: AsyncSocketModeHandler | None = None
    upkeep: Upkeep | None = None

    def close(self) -> None:
        self.database.dispose()


def create_bolt_app(*, signing_secret: str, client: object, deps: middleware.Deps) -> AsyncApp:
    """The Bolt app with every listener registered (nothing is registered at import time)."""
    app = AsyncApp(
        client=client,  # type: ignore[arg-type]
        signing_secret=signing_secret,
        # Listeners ack first and spawn their work: Bolt answers as soon as they return, without
        # polling for the ack (DESIGN.md: ~1.4 ms vs ~12 ms per ack on these machines).
        process_before_response=True,
    )
    middleware.register(app, deps)
    commands.register(app)
    actions.register(app)
    home.register(app)
    return app


def build_bot(settings: Settings, plan_file: Path | None = None) -> MigrateBot:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    plan_path = plan_file or settings.plan
    missing = [
        name
        for name, value in (
            ("SLACK_BOT_TOKEN", token),
            ("SLACK_SIGNING_SECRET", secret),
            ("--plan FILE or MIGRATEBOT_PLAN", plan_path),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            f"migratebot serve needs {', '.join(missing)} — set them in the environment "
            "(the Slack app's Basic Information and OAuth pages hold the token and the secret)"
        )
    assert plan_path is not None
    database = open_current(settings.resolved_database_url)
    try:
        repositories = Repositories.over(database)
        plans = PlanSource(plan_path, repositories)
        requests = WaveRequests(plans, repositories, WaveService(repositories.migrations, repositories.audit))
        client = build_client(token, base_url=settings.slack_api_url)
        directory = SlackDirectory(client)
        roles = RoleResolver(plans.latest, directory)
        metrics = Metrics()
        background = Background()
        deps = middleware.Deps(
            requests=requests,
            roles=roles,
            metrics=metrics,
            background=background,
            deliveries=middleware.DeliveryLedger(requests),
            messages=WaveMessages(plans, repositories),
        )
        bolt = create_bolt_app(signing_secret=secret, client=client, deps=deps)
    except BaseException:
        database.dispose()
        raise
    bot = MigrateBot(
        settings=settings,
        database=database,
        repositories=repositories,
        plans=plans,
        requests=requests,
        roles=roles,
        directory=directory,
        metrics=metrics,
        background=background,
        bolt=bolt,
        asgi=Starlette(),
        app_token=settings.slack_app_token.get_secret_value() if settings.slack_app_token else None,
        # ---- Slack upkeep (handlers/upkeep.py): request expiry sweep, progress notifier ----------
        # The engine's bus: `bot.upkeep.notifier.attach(bus)` (or Upkeep(..., bus=bus)).
        upkeep=Upkeep(requests, deps.messages, client, metrics, background=background),
        # ---- end Slack upkeep -------------------------------------------------------------------
    )
    bot.asgi = create_asgi(bot)
    return bot


def create_asgi(bot: MigrateBot) -> Starlette:
    handler = AsyncSlackRequestHandler(bot.bolt)
    metrics = bot.metrics
    # Slash commands are acked once their signature checks out, then run through Bolt
    # (handlers/front_door.py); everything else goes through Bolt before the answer.
    secret = bot.settings.slack_signing_secret.get_secret_value() if bot.settings.slack_signing_secret else ""
    front_door = FrontDoor(handler, bot.bolt, secret, bot.background, metrics)

    async def events(request: Request) -> Response:
        response = await front_door.handle(request)
        metrics.inc("migratebot_slack_requests_total", status=str(response.status_code))
        if response.status_code == 200:
            metrics.inc("migratebot_slack_acks_total")
        elif response.status_code == 401:
            metrics.inc("migratebot_refusals_total", reason="signature")
        return response

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(check_current, bot.database)
            checks["database"] = "ok"
        except DomainError as error:
            checks["database"] = str(error)
        try:
            await bot.directory.check_auth()
            checks["slack"] = "ok"
        except AdapterError as error:
            checks["slack"] = str(error)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def metrics_text(_: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if bot.upkeep is not None:
            bot.upkeep.start()  # Slack upkeep: request expiry sweep, progress notifier
        bot.socket_mode = socket_mode_handler(bot)
        if bot.socket_mode is not None:
            await bot.socket_mode.connect_async()  # type: ignore[no-untyped-call]
            log.info("Socket Mode connected")
        try:
            yield
        finally:
            if bot.socket_mode is not None:
                await bot.socket_mode.close_async()  # type: ignore[no-untyped-call]
            await bot.background.drain()
            if bot.upkeep is not None:
                await bot.upkeep.stop()

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def socket_mode_handler(bot: MigrateBot) -> AsyncSocketModeHandler | None:
    """Socket Mode when SLACK_APP_TOKEN is set. Call it on the running loop: the handler opens its
    aiohttp session when built."""
    if not bot.app_token:
        return None
    return AsyncSocketModeHandler(bot.bolt, bot.app_token)


def serve(bot: MigrateBot) -> None:
    """Run until interrupted, on MIGRATEBOT_HTTP_HOST:MIGRATEBOT_HTTP_PORT."""
    import uvicorn

    try:
        uvicorn.run(
            bot.asgi,
            host=bot.settings.http_host,
            port=bot.settings.http_port,
            log_level=bot.settings.log_level.lower(),
            timeout_graceful_shutdown=10,
        )
    finally:
        bot.close()
