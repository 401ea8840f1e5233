"""A wave's progress and results in Slack, from the engine's EventBus.

One progress message per wave, in the request's thread, edited in place (chat.update) at most once
per `min_interval` per wave — the latest state always gets through, intermediate ones may be skipped.
On WaveFinished: the last progress, the results in the thread and a one-line summary in the channel;
after a wave whose nodes moved, the results report (p50/p90 beside the AL2 baseline) with its chart.
StepFailed, WavePaused and EngineAlert become short replies in the thread.

Events arrive on the engine's threads. `publish` only records the event under a lock and wakes the
worker on the event loop (`call_soon_threadsafe`): it never waits for Slack or the database, so the
publisher is never blocked. The worker writes what each message should say to the database first
(slack_messages) and then asks Slack; a post or update that fails stays pending there and is sent
again by `reconcile()` — on a timer, and whenever the worker wakes — so a Slack outage delays what
people see and never loses it.

Wiring (bot/app.py, once the engine's bus exists): `notifier.attach(bus)`; the worker runs as
`Upkeep` (handlers/upkeep.py) runs it, inside the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.engine.events import EngineAlert, Event, EventBus, StepFailed, WaveFinished, WavePaused, WaveProgress
from bot.services.requests import DRAWN, Thread, WaveMessages, WaveRequests
from handlers import views
from handlers.replies import SLACK_ERRORS
from storage.repositories import MessageKind, SlackMessageView

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0  # seconds between two updates of one wave's progress message
RECONCILE_EVERY = 5.0  # seconds between two looks for messages Slack has not shown yet


class SlackNotifier:
    def __init__(
        self,
        messages: WaveMessages,
        client: AsyncWebClient,
        *,
        min_interval: float = MIN_INTERVAL,
        reconcile_every: float = RECONCILE_EVERY,
        clock: Callable[[], float] = time.monotonic,
        calm: Callable[[], Awaitable[None]] | None = None,
        results: Callable[[WaveFinished], Awaitable[None]] | None = None,
        requests: WaveRequests | None = None,
    ) -> None:
        self._messages = messages
        # Whose request messages are redrawn when their wave moves on (None: not this notifier's job).
        self._requests = requests
        self._client = client
        self._min_interval = min_interval
        self._reconcile_every = reconcile_every
        self._clock = clock
        self._lock = threading.Lock()
        self._progress: dict[int, WaveProgress] = {}  # the latest not yet sent, per wave id
        self._others: list[Event] = []  # everything else, in publish order
        self._sent_at: dict[int, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._busy = False
        self._poked = False  # a wake-up is on its way to the loop already
        self._timer: asyncio.TimerHandle | None = None
        # Slack acks go first: each round waits until no Slack request is in flight (handlers/background.py).
        self._calm = calm
        # A finished wave's results report and chart (handlers/reports.py): read from the database and
        # the cluster in their own task, so progress of other waves is not held up behind them.
        self._results = results
        self._posting: set[asyncio.Task[None]] = set()

    # ---- the publisher's side (any thread) -------------------------------------------------------

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Subscribe to the engine's bus; returns the function that unsubscribes."""
        return bus.subscribe(self.publish)

    def publish(self, event: Event) -> None:
        """Take an event from any thread without waiting for anything."""
        with self._lock:
            if isinstance(event, WaveProgress):
                self._progress[event.wave.wave_id] = event
            else:
                self._others.append(event)
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return  # not running yet: run() flushes what was recorded as soon as it starts
        with self._lock:
            if self._poked:
                return  # a hundred events a second wake the loop once per round, not a hundred times
            self._poked = True
        # A closed loop (shutdown) refuses: the database keeps what was wanted.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    @property
    def idle(self) -> bool:
        """Nothing recorded is waiting to be handled (tests poll this with a deadline)."""
        with self._lock:
            return not self._progress and not self._others and not self._busy and not self._posting

    # ---- the worker (the app's event loop) -------------------------------------------------------

    async def run(self) -> None:
        """Handle events until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()
        last_reconcile = self._clock()
        while True:
            timeout = max(0.0, self._reconcile_every - (self._clock() - last_reconcile))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            try:
                if self._calm is not None:
                    await self._calm()
                await self.flush()
                if self._clock() - last_reconcile >= self._reconcile_every:
                    last_reconcile = self._clock()
                    await self.reconcile()
            except Exception:
                log.exception("the Slack notifier failed a round; it tries again on the next event")

    async def flush(self) -> None:
        """Send what is due: events in order, each wave's progress when its interval has passed (and
        always before that wave's results)."""
        with self._lock:
            others, self._others = self._others, []
            self._busy = True
            self._poked = False
        try:
            for event in others:
                if isinstance(event, WaveFinished):
                    await self._send_progress(event.wave.wave_id, force=True)
                    await self._finished(event)
                    await self.redraw_requests()
                elif not isinstance(event, WaveProgress):
                    await self._note(event)
            with self._lock:
                waves = list(self._progress)
            for wave_id in waves:
                await self._send_progress(wave_id, force=False)
        finally:
            with self._lock:
                self._busy = False

    async def _send_progress(self, wave_id: int, *, force: bool) -> None:
        now = self._clock()
        due = self._sent_at.get(wave_id, float("-inf")) + self._min_interval
        with self._lock:
            event = self._progress.get(wave_id)
            if event is None:
                return
            if not force and now < due:
                self._wake_at(due - now)
                return
            del self._progress[wave_id]
        self._sent_at[wave_id] = now
        await self._show(
            event.wave.wave_id,
            MessageKind.PROGRESS,
            text=views.progress_text(event),
            blocks=views.progress_blocks(event),
            facts=views.progress_facts(event),
        )

    def _wake_at(self, delay: float) -> None:
        """One timer at a time: the earliest moment a throttled wave may be updated again."""
        if self._loop is None or self._wake is None:
            return
        due = self._loop.time() + delay
        if self._timer is not None and not self._timer.cancelled() and self._timer.when() <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(due, self._wake.set)

    async def _finished(self, event: WaveFinished) -> None:
        wave_id = event.wave.wave_id
        await self._show(
            wave_id, MessageKind.RESULT, text=views.result_text(event), blocks=views.result_blocks(event)
        )
        text = views.summary_text(event)
        await self._show(wave_id, MessageKind.SUMMARY, text=text, blocks=[], in_thread=False)
        self._sent_at.pop(wave_id, None)
        if self._results is not None:
            task = asyncio.create_task(self._post_results(self._results, event), name="post wave results")
            with self._lock:
                self._posting.add(task)
            task.add_done_callback(self._posted)

    async def _post_results(
        self, post: Callable[[WaveFinished], Awaitable[None]], event: WaveFinished
    ) -> None:
        try:
            await post(event)
        except Exception:
            log.exception("could not post the results of %s", event.wave.label)

    def _posted(self, task: asyncio.Task[None]) -> None:
        with self._lock:
            self._posting.discard(task)

    async def _note(self, event: StepFailed | WavePaused | EngineAlert) -> None:
        text = views.note_text(event)
        # One message per distinct event (a republished one is the same note, not a second one).
        digest = hashlib.sha256(f"{type(event).__name__}|{event.at.isoformat()}|{text}".encode()).hexdigest()
        await self._show(event.wave.wave_id, f"note:{digest[:24]}", text=text, blocks=[])

    async def _show(
        self,
        wave_id: int,
        kind: str,
        *,
        text: str,
        blocks: list[dict[str, Any]],
        facts: dict[str, Any] | None = None,
        in_thread: bool = True,
    ) -> None:
        thread: Thread = await asyncio.to_thread(self._messages.thread_of, wave_id)
        wanted = await asyncio.to_thread(
            self._messages.want,
            wave_id,
            thread,
            kind,
            text=text,
            blocks=blocks,
            facts=facts,
            in_thread=in_thread,
        )
        await self._deliver(wanted)

    async def _deliver(self, message: SlackMessageView) -> bool:
        return await deliver(self._client, self._messages, message)

    async def reconcile(self) -> int:
        """Send again every message whose wanted revision Slack has not shown, and redraw the request
        messages of waves that moved on; returns how many messages Slack now shows anew."""
        shown = 0
        for message in await asyncio.to_thread(self._messages.pending):
            if await self._deliver(message):
                shown += 1
        return shown + await self.redraw_requests()

    async def redraw_requests(self) -> int:
        """The request message of each wave the engine or canary moved shows its state now (through
        the outbox: a refused update is sent again)."""
        if self._requests is None:
            return 0
        shown = 0
        for card, message in await asyncio.to_thread(self._requests.cards_to_redraw):
            wanted = await asyncio.to_thread(
                self._messages.want,
                card.wave.id,
                Thread(message.cycle, message.channel, None),
                MessageKind.REQUEST,
                text=views.request_text(card),
                blocks=views.request_blocks(card),
                facts={DRAWN: card.wave.version},
                in_thread=False,
            )
            if wanted.pending and await self._deliver(wanted):
                shown += 1
        return shown


# First posts of this process, by (WaveMessages, message id): `reconcile` runs beside the task that
# posts a message first (ResultsPoster's own task, the worker) and may hold a view read before that
# post landed — while a post waits out a 429's Retry-After the row still reads "not shown". Posting
# from such a view showed the results twice (found by `make soak`): a message being posted is left to
# its poster, one already posted is updated in place.
_POSTING: set[tuple[int, int]] = set()
_POSTED: dict[tuple[int, int], tuple[str, str]] = {}  # → (ts, channel)


async def deliver(client: AsyncWebClient, messages: WaveMessages, message: SlackMessageView) -> bool:
    """Make Slack show the message's wanted revision; False (and recorded, for `reconcile` to send
    again) when Slack refused. A message another task of this process is posting right now is left
    to it (False, nothing recorded)."""
    key = (id(messages), message.id)
    if message.ts is not None:
        return await _deliver_now(client, messages, message)
    if key in _POSTING:
        return False
    if key in _POSTED:
        ts, channel = _POSTED[key]
        return await _deliver_now(client, messages, dataclasses.replace(message, ts=ts, channel=channel))
    # Across replicas: only the one that claims this attempt in the database posts it.
    if not await asyncio.to_thread(messages.claim_post, message):
        return False
    _POSTING.add(key)
    try:
        return await _deliver_now(
            client, messages, message, posted=lambda ts, ch: _POSTED.update({key: (ts, ch)})
        )
    finally:
        _POSTING.discard(key)


async def _deliver_now(
    client: AsyncWebClient,
    messages: WaveMessages,
    message: SlackMessageView,
    *,
    posted: Callable[[str, str], object] = lambda ts, channel: None,
) -> bool:
    try:
        if message.ts is None:
            response = await client.chat_postMessage(
                channel=message.channel,
                thread_ts=message.thread_ts,
                text=message.text,
                blocks=message.blocks or None,
            )
            ts, channel = str(response["ts"]), str(response.get("channel") or message.channel)
            posted(ts, channel)
        else:
            await client.chat_update(
                channel=message.channel, ts=message.ts, text=message.text, blocks=message.blocks or []
            )
            ts, channel = message.ts, message.channel
    except SLACK_ERRORS as error:
        log.warning("could not show %s of wave id %s yet: %s", message.kind, message.wave_id, error)
        await asyncio.to_thread(messages.failed, message, str(error))
        return False
    await asyncio.to_thread(messages.delivered, message, ts=ts, channel=channel)
    if message.kind == MessageKind.REQUEST:
        log.info("posted the request message of wave id %s after Slack refused it earlier", message.wave_id)
    return True
