"""The Slack side's periodic work, on the app's event loop: expire requests nobody decided in time
(and redraw their messages), forget old delivery claims, and run the progress notifier.

Started and stopped by the app's lifespan (bot/app.py). Expiry is also checked on every click
(WaveRequests.decide), so a missed sweep never lets an expired request be approved; the sweep is what
closes the message for everyone to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import DomainError
from bot.engine.events import EventBus
from bot.services.reports import ReportSource
from bot.services.requests import ClosedRequest, WaveMessages, WaveRequests
from handlers.background import Background
from handlers.metrics import Metrics
from handlers.notifier import SlackNotifier
from handlers.reports import ResultsPoster
from handlers.requests import redraw

log = logging.getLogger(__name__)

# Sweep often enough that a request closes within a small share of its expiry, never more than
# every second and at least twice a minute.
SWEEP_MIN, SWEEP_MAX = 1.0, 30.0
DELIVERY_KEEP = dt.timedelta(hours=1)  # Slack gives up redelivering after minutes


class Upkeep:
    def __init__(
        self,
        requests: WaveRequests,
        messages: WaveMessages,
        client: AsyncWebClient,
        metrics: Metrics,
        *,
        bus: EventBus | None = None,
        background: Background | None = None,
        reports: ReportSource | None = None,
    ) -> None:
        self._requests = requests
        self._client = client
        self._metrics = metrics
        results = None if reports is None else ResultsPoster(reports, messages, client).post
        self.notifier = SlackNotifier(
            messages,
            client,
            calm=background.until_calm if background else None,
            results=results,
            requests=requests,
        )
        if bus is not None:
            self.notifier.attach(bus)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the sweep and the notifier on the running loop."""
        self._tasks = [
            asyncio.create_task(self._sweeping(), name="expire wave requests"),
            asyncio.create_task(self.notifier.run(), name="slack notifier"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _sweeping(self) -> None:
        rounds = 0
        while True:
            try:
                await self.sweep()
                if rounds % 120 == 0:
                    await asyncio.to_thread(self._requests.forget_deliveries, DELIVERY_KEEP)
            except DomainError as error:
                log.warning("the request sweep could not run: %s", error)
            except Exception:
                log.exception("the request sweep failed; it runs again shortly")
            rounds += 1
            await asyncio.sleep(self._interval())

    def _interval(self) -> float:
        expiry = self._requests.plans.latest().approvals.expires_after.total_seconds()
        return max(SWEEP_MIN, min(SWEEP_MAX, expiry / 10))

    async def sweep(self) -> list[ClosedRequest]:
        """Expire overdue requests now and redraw their messages ("expired — ask again")."""
        closed = await asyncio.to_thread(self._requests.expire_overdue)
        for request in closed:
            self._metrics.inc("migratebot_requests_expired_total")
            if request.message is not None:
                channel, ts = request.message
                await redraw(self._client, channel, ts, request.card)
        return closed
