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
import datetime as dt
import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
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
from bot.adapters.kube import KubeAdapter, KubeConfigError
from bot.adapters.slack import SlackDirectory, build_client
from bot.canary.setup import CanaryStack, build_canary, own_cluster
from bot.domain.errors import DomainError
from bot.engine.events import EventBus
from bot.engine.executor import EngineSettings
from bot.plan import Plan
from bot.plan.models import Wave as PlanWave
from bot.services.engine import EngineRunner
from bot.services.reports import ReportSource
from bot.services.requests import PlanSource, WaveMessages, WaveRequests
from bot.services.roles import RoleResolver
from bot.services.waves import WaveService
from bot.settings import Settings
from handlers import actions, alerts, commands, home, middleware
from handlers.background import Background
from handlers.front_door import FrontDoor
from handlers.metrics import Metrics
from handlers.upkeep import Upkeep
from storage.db import Database
from storage.repositories import Repositories, WaveView
from storage.schema import check_current, open_current

log = logging.getLogger(__name__)


class ConfigurationError(DomainError):
    """A setting the bot can't run without is missing or wrong."""


@dataclass
class Operations:
    """What executes: the engine (one per cluster of the plan) and the canary, with the Slack
    notifier on their event bus. Every replica runs the canary's Lease election; the one that leads
    resumes the canary's scheduler and starts the engines, one that stops leading stops them (the
    executor lock in the database stays the last word on who may act)."""

    bus: EventBus
    engines: EngineRunner
    canary: CanaryStack
    problem: str | None = None  # why the engine could not start, for /readyz and the log

    def start(self) -> None:
        self.canary.start()

    def stop(self) -> None:
        self.canary.stop()  # stops leading: the engines stop with it
        self.engines.close()

    def start_engines(self) -> None:
        try:
            self.engines.start()
            self.problem = None
        except Exception as error:
            self.problem = f"the engine could not start: {error}"
            log.exception("the engine could not start; this replica leads the canary only")


def build_operations(
    settings: Settings,
    repositories: Repositories,
    plans: PlanSource,
    waves: WaveService,
    client: object,
    messages: WaveMessages,
    *,
    lease_kube: KubeAdapter,
) -> Operations:
    bus = EventBus()
    notifier = alerts.SlackNotifier(client, plans.latest, messages=messages)  # type: ignore[arg-type]
    canary = build_canary(
        settings,
        repositories,
        plans.latest,
        waves,
        notifier,
        bus=bus,
        lease_kube=lease_kube,
        lease_duration=settings.lease_duration,
    )

    def watch_bake(wave: WaveView, _planned: PlanWave) -> None:
        # A wave that reaches `baking` is watched by the canary, which completes (or fails) its bake.
        canary.runner.schedule_bake(wave.cluster, wave.id)

    engines = EngineRunner(
        _current_plan(plans),
        repositories,
        bus,
        EngineSettings(
            poll_interval=settings.engine_poll_interval,
            retry_interval=settings.engine_retry_interval,
            lock_ttl=dt.timedelta(seconds=settings.engine_lock_ttl),
            manage_bake=False,
            headroom_namespace=settings.lease_namespace,  # the bot's own namespace (the chart's Role)
        ),
        on_baking=watch_bake,
    )
    operations = Operations(bus, engines, canary)
    canary.on_leadership(operations.start_engines, engines.stop)
    return operations


def _current_plan(plans: PlanSource) -> Callable[[], Plan]:
    """The plan file as it reads now, for the engine's threads (PlanSource re-reads on change)."""
    lock = threading.Lock()

    def current() -> Plan:
        with lock:
            return plans.current()

    return current


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
    operations: Operations | None = None  # None with MIGRATEBOT_EXECUTOR=off
    reports: ReportSource | None = None  # None with MIGRATEBOT_EXECUTOR=off

    def close(self) -> None:
        self.metrics.unwatch_api_errors()
        if self.reports is not None:
            self.reports.close()
        self.database.dispose()


def create_bolt_app(
    *,
    signing_secret: str,
    client: object,
    deps: middleware.Deps,
    canary: alerts.CanaryDeps | None = None,
) -> AsyncApp:
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
    if canary is not None:
        alerts.register(app, canary)
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
    lease_kube = None
    if settings.executor:  # checked before anything is opened or registered: a refusal changes nothing
        try:
            lease_kube = own_cluster()
        except KubeConfigError as error:
            raise ConfigurationError(
                f"migratebot serve runs the engine and the canary, which need the cluster: {error}. "
                "To serve Slack only (another process runs `migratebot engine`), set MIGRATEBOT_EXECUTOR=off"
            ) from error
    database = open_current(settings.resolved_database_url)
    try:
        repositories = Repositories.over(database)
        plans = PlanSource(plan_path, repositories)
        waves = WaveService(repositories.migrations, repositories.audit)
        requests = WaveRequests(plans, repositories, waves)
        client = build_client(token, base_url=settings.slack_api_url)
        directory = SlackDirectory(client)
        roles = RoleResolver(plans.latest, directory)
        metrics = Metrics()
        metrics.watch_waves(repositories.migrations.state_counts)  # /metrics: waves by state
        metrics.watch_api_errors()  # /metrics: kube/aws/slack errors the adapters report
        background = Background()
        # The waves' reports read the cluster (the plan's kube_context in KUBECONFIG) and AWS (boto3's
        # chain): only a bot that runs with the cluster has them.
        reports = ReportSource.over(plans.latest, repositories) if lease_kube is not None else None
        deps = middleware.Deps(
            requests=requests,
            roles=roles,
            metrics=metrics,
            background=background,
            deliveries=middleware.DeliveryLedger(requests),
            messages=WaveMessages(plans, repositories),
            reports=reports,
        )
        operations = None
        if lease_kube is not None:
            operations = build_operations(
                settings, repositories, plans, waves, client, deps.messages, lease_kube=lease_kube
            )
        canary = None
        if operations is not None:
            canary = alerts.CanaryDeps(operations.canary.desk, operations.canary.runner)
            operations.bus.subscribe(metrics.on_engine_event)  # /metrics: evictions
            operations.canary.runner.observers.append(metrics.on_canary_run)  # /metrics: canary runs
        bolt = create_bolt_app(signing_secret=secret, client=client, deps=deps, canary=canary)
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
        upkeep=Upkeep(
            requests,
            deps.messages,
            client,
            metrics,
            background=background,
            bus=operations.bus if operations is not None else None,
            reports=reports,
        ),
        # ---- end Slack upkeep -------------------------------------------------------------------
        operations=operations,
        reports=reports,
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
        if bot.operations is not None:
            # Reported, not gating: a replica whose engine failed still serves Slack (the log says why).
            checks["engine"] = bot.operations.problem or "ok"
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    async def metrics_text(_: Request) -> Response:
        # render() reads the database (waves by state): off the event loop.
        return PlainTextResponse(
            await asyncio.to_thread(metrics.render), media_type="text/plain; version=0.0.4"
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if bot.upkeep is not None:
            bot.upkeep.start()  # Slack upkeep: request expiry sweep, progress notifier
        if bot.operations is not None:
            # Blocking (the Lease's first round trip, the scheduler's job store): off the loop.
            await asyncio.to_thread(bot.operations.start)
        bot.socket_mode = socket_mode_handler(bot)
        if bot.socket_mode is not None:
            await bot.socket_mode.connect_async()  # type: ignore[no-untyped-call]
            log.info("Socket Mode connected")
        # Everything loaded so far (botocore's service models, the Kubernetes and Slack clients,
        # SQLAlchemy's mappers: ~230,000 objects) lives as long as the process: out of the cyclic
        # collector's sight, a full collection no longer walks them. Measured: a full collection
        # took 116 ms on this heap — the whole loop stalls meanwhile, and with it a burst of acks.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if bot.socket_mode is not None:
                await bot.socket_mode.close_async()  # type: ignore[no-untyped-call]
            if bot.operations is not None:
                await asyncio.to_thread(bot.operations.stop)
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
            log_config=None,  # uvicorn's loggers go through configure_logging's handler (JSON by default)
            timeout_graceful_shutdown=10,
        )
    finally:
        bot.close()
