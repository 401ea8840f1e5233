"""The wave reports in Slack: the readiness and security summaries in a request's thread (with the
full tables as files), the verdict on the request itself, `/migrate readiness|security [wave]`, and
a finished wave's results with its chart.

Reports read the cluster and AWS (seconds on a large cluster): they run in a worker thread after
the request is posted and acknowledged, and a report that can't be computed never fails the request
— the request says why instead. What each thread message should say is kept first (slack_messages,
as the progress notifier does), so a message Slack refused is sent again by the notifier's
reconciliation; the readiness message's facts keep the glance the request card shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.audit import redact
from bot.domain.errors import DomainError
from bot.engine.events import WaveFinished
from bot.reports.glance import COMPUTING, failed, glance
from bot.reports.results import Results
from bot.reports.snapshot import snapshot
from bot.services.reports import ReportSource, WaveRef, WaveReports, results_chart
from bot.services.requests import RequestCard, Thread, WaveMessages, WaveRequests
from handlers import views
from handlers.notifier import deliver
from handlers.replies import SLACK_ERRORS
from handlers.report_views import readiness_blocks, report_file, results_blocks, security_blocks
from handlers.requests import redraw
from storage.repositories import MessageKind

log = logging.getLogger(__name__)

JSON = dict[str, Any]
INTERNAL = "migratebot hit an internal error computing them (it is logged)"
NO_CLUSTER = (
    "reports need the cluster: this migratebot serves Slack only (MIGRATEBOT_EXECUTOR=off), so it has "
    "no KUBECONFIG to read the cluster with — run `migratebot report {kind} --wave {wave}` where KUBECONFIG "
    "and AWS credentials reach the cluster, or serve with the executor on. Nothing was done."
)


def _why(error: Exception) -> str:
    """The error as people may read it: adapters say what they did and the server's answer; anything
    that looks like a credential is blanked all the same."""
    return str(redact(str(error)))


async def _computed(source: ReportSource, ref: WaveRef) -> WaveReports | str:
    """Both reports, or why they could not be computed (a sentence for people: no secrets)."""
    try:
        return await asyncio.to_thread(source.reports, ref)
    except DomainError as error:  # ReportFailed carries the adapter's message: what, and the server's why
        return _why(error)
    except Exception:
        log.exception("the reports of %s of %s failed", ref.wave.name, ref.cluster.name)
        return INTERNAL


# ---- a wave request's reports ------------------------------------------------------------------


def reading(card: RequestCard, source: ReportSource | None) -> RequestCard:
    """The request as first posted: with a cluster to read, it says its reports are being read."""
    return card if source is None else dataclasses.replace(card, reports=COMPUTING)


@dataclass(frozen=True)
class RequestReports:
    """What posts a request's reports: built from the listener's deps."""

    source: ReportSource
    requests: WaveRequests
    messages: WaveMessages
    client: AsyncWebClient

    async def post(self, card: RequestCard) -> None:
        """The request `card` is posted: read its wave's reports, keep the glance, post the summaries
        in the request's thread with the full tables attached, and redraw the request with them."""
        thread = await asyncio.to_thread(self.messages.thread_of, card.wave.id)
        if thread.thread_ts is None or thread.cycle != card.ref.version:
            return  # the request message isn't where Slack shows it (yet): nothing to thread under
        try:
            ref = await asyncio.to_thread(self.source.wave, card.wave.cluster, str(card.wave.index))
        except DomainError as error:
            outcome: WaveReports | str = _why(error)
        else:
            outcome = await _computed(self.source, ref)
        label = card.wave.label
        if isinstance(outcome, str):
            kept = failed(outcome)
            await self._show(
                card,
                thread,
                MessageKind.READINESS,
                text=f":warning: The readiness and security reports of {label} could not be computed: "
                f"{outcome}",
                blocks=[],
                facts=kept.facts(),
            )
        else:
            kept = glance(outcome.readiness, outcome.security)
            # Bound before it is shown: an approval is checked against the readiness people see.
            await asyncio.to_thread(self.requests.bind_readiness, card.ref, snapshot(outcome.readiness))
            await self._show(
                card,
                thread,
                MessageKind.READINESS,
                text=f"Readiness of {label}: {kept.verdict}",
                blocks=readiness_blocks(outcome.readiness),
                facts=kept.facts(),
            )
            await self._show(
                card,
                thread,
                MessageKind.SECURITY,
                text=f"Security of {label}: AL2 vs Bottlerocket",
                blocks=security_blocks(outcome.security),
            )
        await self._redraw(card, thread)
        if not isinstance(outcome, str):
            files: list[tuple[str, str | bytes]] = [
                report_file(report, fmt)
                for report in (outcome.readiness, outcome.security)
                for fmt in ("csv", "json")
            ]
            await upload(self.client, thread, files, f"The full readiness and security tables of {label}.")

    async def _show(
        self,
        card: RequestCard,
        thread: Thread,
        kind: str,
        *,
        text: str,
        blocks: list[JSON],
        facts: JSON | None = None,
    ) -> None:
        wanted = await asyncio.to_thread(
            self.messages.want, card.wave.id, thread, kind, text=text, blocks=blocks, facts=facts
        )
        await deliver(self.client, self.messages, wanted)

    async def _redraw(self, card: RequestCard, thread: Thread) -> None:
        """The request as it stands now, with the glance. A click redraws it too: when one lands while
        this one is on its way, the second look sees it and draws again."""
        assert thread.thread_ts is not None
        drawn: list[JSON] | None = None
        for _ in range(3):
            try:
                now = await asyncio.to_thread(self.requests.request_card, card.ref)
            except DomainError as error:
                log.warning("could not redraw the request of %s: %s", card.wave.label, error)
                return
            blocks = views.request_blocks(now)
            if blocks == drawn:
                return
            await redraw(self.client, thread.channel, thread.thread_ts, now)
            drawn = blocks


async def upload(
    client: AsyncWebClient, thread: Thread, files: list[tuple[str, str | bytes]], comment: str
) -> bool:
    """Attach `files` (name, content) in the thread, in one message (files.getUploadURLExternal,
    the upload, files.completeUploadExternal). A refusal is logged: the summaries are posted already."""
    try:
        await client.files_upload_v2(
            file_uploads=[{"filename": name, "content": content, "title": name} for name, content in files],
            channel=thread.channel,
            thread_ts=thread.thread_ts,
            initial_comment=comment,
        )
    except SLACK_ERRORS as error:
        log.warning("could not attach %s: %s", ", ".join(name for name, _ in files), error)
        return False
    return True


# ---- /migrate readiness|security [wave] ----------------------------------------------------------


async def answer(
    source: ReportSource | None, kind: str, cluster: str | None, wave: str | None
) -> tuple[str, list[JSON] | None]:
    """The answer to `/migrate readiness|security [wave]`: (text, blocks). Refusals (no cluster, an
    unknown wave, a cluster that can't be read) are sentences with blocks None."""
    if source is None:
        return ":warning: " + NO_CLUSTER.format(kind=kind, wave=wave or "N"), None
    try:
        ref = await asyncio.to_thread(source.wave, cluster, wave)
    except DomainError as error:
        return f":warning: {_why(error)}. Nothing was done.", None
    label = f"wave {ref.number} ({ref.wave.name})"
    try:
        if kind == "readiness":
            readiness = await asyncio.to_thread(source.readiness, ref)
            footer = "The full list: `migratebot report readiness --wave {n}`, or the wave request's thread."
            return (
                f"Readiness of {label}: {readiness.verdict.value}",
                readiness_blocks(readiness, footer=footer.format(n=ref.number)),
            )
        security = await asyncio.to_thread(source.security, ref)
        footer = "The full table: `migratebot report security --wave {n}`, or the wave request's thread."
        return (
            f"Security of {label}: AL2 vs Bottlerocket",
            security_blocks(security, footer=footer.format(n=ref.number)),
        )
    except DomainError as error:
        return f":warning: The {kind} report of {label} could not be computed: {_why(error)}", None


# ---- a finished wave's results -------------------------------------------------------------------

# Outcomes after which the wave's nodes and pods moved: the engine recorded their timings.
MOVED = frozenset({"baking", "completed"})


@dataclass(frozen=True)
class ResultsPoster:
    """Posts a finished wave's results and chart in its request's thread (the notifier calls it)."""

    source: ReportSource
    messages: WaveMessages
    client: AsyncWebClient

    async def post(self, event: WaveFinished) -> None:
        wave = event.wave
        if event.outcome not in MOVED:
            return
        thread = await asyncio.to_thread(self.messages.thread_of, wave.wave_id)
        try:
            ref = await asyncio.to_thread(self.source.wave, wave.cluster, str(wave.index))
            report: Results | str = await asyncio.to_thread(self.source.results, ref, wave.wave_id)
        except DomainError as error:
            report = _why(error)
        except Exception:
            log.exception("the results of %s failed", wave.label)
            report = INTERNAL
        if isinstance(report, str):
            text = f":warning: The results of {wave.label} could not be computed: {report}"
            blocks: list[JSON] = []
        else:
            text = (
                f"Results of {wave.label}: Bottlerocket launch → Ready {report.bottlerocket_ready.text()}; "
                f"pods evicted → Ready {report.reschedule.text()}"
            )
            blocks = results_blocks(report)
        wanted = await asyncio.to_thread(
            self.messages.want, wave.wave_id, thread, MessageKind.RESULTS, text=text, blocks=blocks
        )
        first = wanted.ts is None  # a republished WaveFinished shows the same results once
        await deliver(self.client, self.messages, wanted)
        if first and not isinstance(report, str):
            chart = await asyncio.to_thread(results_chart, report)
            files: list[tuple[str, str | bytes]] = [
                (f"wave-{report.wave_number}-results.png", chart),
                report_file(report, "csv"),
                report_file(report, "json"),
            ]
            await upload(self.client, thread, files, f"The results of {wave.label}: chart and figures.")
