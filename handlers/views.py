"""Block Kit for every message and view the bot shows, built with slack_sdk's models.

Pure: data in, JSON-ready dicts out. Ids come from handlers/ids.py; button values carry a
RequestRef and nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.waves import WaveState
from bot.engine.events import EngineAlert, StepFailed, WaveFinished, WavePaused, WaveProgress
from bot.plan import PlanSummary
from bot.services.requests import ClusterGlance, RequestCard
from handlers.ids import HomeBlock, ProgressBlock, WaveAction, WaveBlock
from storage.repositories import AuditEventView, WaveView

JSON = dict[str, Any]
READINESS_PENDING = (
    "*Readiness:* no verdict shown — the reports need the cluster, which this migratebot does not read "
    "(it serves Slack only); `/migrate readiness` says how to get them."
)
READINESS_COMPUTING = "*Readiness:* reading the cluster and AWS for the readiness and security reports…"
_VERDICT_ICON = {
    "READY": ":large_green_circle:",
    "READY WITH WARNINGS": ":large_yellow_circle:",
    "BLOCKED": ":red_circle:",
}
_STATE_ICON = {
    WaveState.PLANNED: ":white_circle:",
    WaveState.REQUESTED: ":hourglass_flowing_sand:",
    WaveState.APPROVED: ":white_check_mark:",
    WaveState.DENIED: ":no_entry_sign:",
    WaveState.EXPIRED: ":hourglass:",
    WaveState.EXECUTING: ":arrows_counterclockwise:",
    WaveState.PAUSED: ":double_vertical_bar:",
    WaveState.VERIFYING: ":mag:",
    WaveState.BAKING: ":bread:",
    WaveState.CANARY_FAILED: ":rotating_light:",
    WaveState.COMPLETED: ":large_green_circle:",
    WaveState.FAILED: ":x:",
    WaveState.ROLLING_BACK: ":rewind:",
    WaveState.ROLLED_BACK: ":leftwards_arrow_with_hook:",
    WaveState.ABORTED: ":black_square_for_stop:",
}


def when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _blocks(blocks: Sequence[Block]) -> list[JSON]:
    return [block.to_dict() for block in blocks]


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- the wave request -------------------------------------------------------------------------


def request_text(card: RequestCard) -> str:
    """The message's notification text (and what screen readers say)."""
    return f"{_title(card)} — requested by <@{card.requested_by}>"


def _title(card: RequestCard) -> str:
    state = card.wave.state
    if card.superseded:
        return f"Wave {card.wave.index} ({card.wave.name}) request replaced"
    if state is WaveState.REQUESTED:
        return f"Wave {card.wave.index} ({card.wave.name}) requested"
    return f"Wave {card.wave.index} ({card.wave.name}) {state.value}"


def request_blocks(card: RequestCard) -> list[JSON]:
    wave, plan_wave = card.wave, card.plan_wave
    blocks: list[Block] = [
        HeaderBlock(block_id=WaveBlock.HEADER, text=PlainTextObject(text=_clip(_title(card), 150))),
        SectionBlock(
            block_id=WaveBlock.SUMMARY,
            text=_md(
                f"<@{card.requested_by}> asks a team lead to approve moving *{wave.label}* of cluster "
                f"*{wave.cluster}* from Amazon Linux 2 to Bottlerocket."
            ),
        ),
        SectionBlock(
            block_id=WaveBlock.DETAILS,
            fields=[
                _md(f"*Selector*\n{_clip(plan_wave.selector.text(), 1900)}"),
                _md(f"*Strategy*\n{plan_wave.strategy.value}"),
                _md(f"*Nodes at a time*\n{plan_wave.max_parallel_nodes}"),
                _md(f"*Bake*\n{_duration(plan_wave.bake)}"),
            ],
        ),
        readiness_section(card),
    ]
    # While open, each decision so far shows progress towards N approvals; once decided, the outcome
    # line names the deciders, so the list would only repeat it.
    if card.approvals and card.open:
        lines = [
            f"{':white_check_mark:' if a.decision.value == 'approve' else ':no_entry_sign:'} "
            f"{a.decision.value}d by <@{a.user_id}> at {when(a.created_at)}"
            for a in card.approvals
        ]
        blocks.append(SectionBlock(block_id=WaveBlock.APPROVALS, text=_md("\n".join(lines))))
    if card.open:
        blocks.append(_decision_buttons(card))
    else:
        blocks.append(SectionBlock(block_id=WaveBlock.OUTCOME, text=_md(_outcome(card))))
    needed = f"{card.required} team lead approval{'s' if card.required != 1 else ''}"
    blocks.append(
        ContextBlock(
            block_id=WaveBlock.FOOTER,
            elements=[
                _md(
                    f"plan `{card.plan_hash[:12]}` · {needed} · requested {when(card.requested_at)} · "
                    f"expires {when(card.expires_at)}"
                )
            ],
        )
    )
    return _blocks(blocks)


def readiness_section(card: RequestCard) -> SectionBlock:
    """The request's readiness verdict and security headline (the full reports are in the request's
    thread and answer `/migrate readiness N` and `/migrate security N`); while they are being
    computed, or when this migratebot can't reach the cluster, a line that says so."""
    glance = card.reports
    if glance is None:
        text = READINESS_PENDING
    elif glance.computing:
        text = READINESS_COMPUTING
    elif glance.verdict is None:
        text = (
            ":warning: *Readiness:* the reports could not be computed — "
            f"{glance.problem or 'no reason given'}. "
            f"`/migrate readiness {card.wave.index}` tries again."
        )
    else:
        icon = _VERDICT_ICON.get(glance.verdict, ":white_circle:")
        text = (
            f"{icon} *Readiness: {glance.verdict}* — {glance.blockers} blocker(s), {glance.warnings} "
            f"warning(s); the reasons are in the thread.\n*Security:* {glance.security or 'unknown'}"
        )
    return SectionBlock(block_id=WaveBlock.READINESS, text=_md(_clip(text, 3000)))


def _outcome(card: RequestCard) -> str:
    if card.superseded:
        return f":arrows_counterclockwise: {card.superseded}"
    state = card.wave.state
    at = f" at {when(card.decided_at)}" if card.decided_at else ""
    by = f" by <@{card.decided_by}>" if card.decided_by else ""
    approvers = [f"<@{a.user_id}>" for a in card.approvals if a.decision.value == "approve"]
    if state is WaveState.APPROVED:
        by = f" by {', '.join(approvers)}" if approvers else by
        return f":white_check_mark: *Approved*{by}{at}. The engine starts it inside the next change window."
    if state is WaveState.DENIED:
        return f":no_entry_sign: *Denied*{by}{at}."
    if state is WaveState.EXPIRED:
        return ":hourglass: *Expired* before anyone decided — ask again with `/migrate next-wave`."
    if approvers and state is not WaveState.ABORTED:
        # Redrawn after the engine took it (the reports arrive late): who approved stays on the card.
        return f":white_check_mark: *Approved* by {', '.join(approvers)}. The wave is now *{state.value}*."
    return f"The wave is now *{state.value}*{by}{at}."


def _decision_buttons(card: RequestCard) -> ActionsBlock:
    value = card.ref.encode()
    label = card.wave.label
    return ActionsBlock(
        block_id=WaveBlock.DECISION,
        elements=[
            ButtonElement(
                text="Approve",
                action_id=WaveAction.APPROVE,
                value=value,
                style="primary",
                confirm=ConfirmObject(
                    title=f"Approve wave {card.wave.index}?",
                    text=_clip(
                        f"{label} of {card.wave.cluster} moves to Bottlerocket "
                        f"({card.plan_wave.selector.text()}).",
                        300,
                    ),
                    confirm="Approve",
                    deny="Cancel",
                ),
            ),
            ButtonElement(
                text="Deny",
                action_id=WaveAction.DENY,
                value=value,
                style="danger",
                confirm=ConfirmObject(
                    title=f"Deny wave {card.wave.index}?",
                    text=_clip(f"{label} stays on Amazon Linux 2; an SRE can request it again.", 300),
                    confirm="Deny",
                    deny="Cancel",
                ),
            ),
        ],
    )


def _duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# ---- answers ------------------------------------------------------------------------------------


def status_blocks(cluster: str, waves: Sequence[WaveView]) -> list[JSON]:
    lines = [_wave_line(w) for w in waves] or ["no waves registered"]
    return _blocks(
        [
            HeaderBlock(text=PlainTextObject(text=_clip(f"Migration of {cluster}", 150))),
            SectionBlock(text=_md(_clip("\n".join(lines), 3000))),
        ]
    )


def status_text(cluster: str, waves: Sequence[WaveView]) -> str:
    return f"Migration of {cluster}: " + ", ".join(f"{w.label} {w.state.value}" for w in waves)


def _wave_line(wave: WaveView) -> str:
    since = wave.entered_at(wave.state)
    extra = f" since {when(since)}" if since else ""
    by = f" · requested by <@{wave.requested_by}>" if wave.requested_by else ""
    return f"{_STATE_ICON[wave.state]} *{wave.label}* — {wave.state.value}{extra}{by}"


def plan_blocks(summary: PlanSummary) -> list[JSON]:
    waves = "\n".join(
        f"{w.index}. *{w.name}* ({w.cluster}) — {w.strategy}, {w.selector}, "
        f"{w.max_parallel_nodes} at a time, bake {w.bake}"
        for w in summary.waves
    )
    clusters = ", ".join(f"{c.name} ({c.region})" for c in summary.clusters)
    roles = ", ".join(f"{r.name}: {r.users} users, {r.usergroups} groups" for r in summary.roles)
    return _blocks(
        [
            HeaderBlock(text=PlainTextObject(text="Migration plan")),
            SectionBlock(text=_md(_clip(f"*Clusters:* {clusters}\n*Waves:*\n{waves}", 3000))),
            SectionBlock(
                text=_md(
                    _clip(
                        f"*Approvals:* {summary.approvals}\n*Roles:* {roles}\n*Change windows:* "
                        + "; ".join(summary.change_windows),
                        3000,
                    )
                )
            ),
            ContextBlock(elements=[_md(f"plan hash `{summary.plan_hash}`")]),
        ]
    )


def audit_blocks(events: Sequence[AuditEventView]) -> list[JSON]:
    if not events:
        return _blocks([SectionBlock(text=_md("The audit log is empty."))])
    lines = [f"`{e.seq}` {when(e.at)} *{e.action}* {e.subject} by {_who(e.actor)}" for e in events]
    return _blocks(
        [
            HeaderBlock(text=PlainTextObject(text=f"Last {len(events)} audit events")),
            SectionBlock(text=_md(_clip("\n".join(lines), 3000))),
            ContextBlock(elements=[_md("Payloads are redacted; `migratebot audit export` has them all.")]),
        ]
    )


def _who(actor: str) -> str:
    return f"<@{actor}>" if actor[:1] in ("U", "W") and actor.isalnum() else actor


# ---- App Home -----------------------------------------------------------------------------------


def home_view(glances: Sequence[ClusterGlance]) -> JSON:
    blocks: list[Block] = [
        HeaderBlock(block_id=HomeBlock.HEADER, text=PlainTextObject(text="AL2 → Bottlerocket migration"))
    ]
    for glance in glances[:30]:
        lines = [_wave_line(w) for w in glance.waves] or ["no waves registered"]
        left = (
            f"*AL2 nodes left:* {glance.al2_nodes_left} ({glance.al2_source})"
            if glance.al2_nodes_left is not None
            else f"*AL2 nodes left:* {glance.al2_source}"
        )
        canary = f"*Last canary:* {glance.last_canary or 'none yet'}"
        blocks += [
            DividerBlock(),
            SectionBlock(
                block_id=f"{HomeBlock.CLUSTER}.{glance.cluster}"[:255],
                text=_md(_clip(f"*{glance.cluster}*\n" + "\n".join(lines), 3000)),
            ),
            ContextBlock(
                block_id=f"{HomeBlock.FACTS}.{glance.cluster}"[:255],
                elements=[_md(_clip(left, 3000)), _md(canary)],
            ),
        ]
    blocks.append(
        ContextBlock(
            block_id=HomeBlock.FOOTER,
            elements=[_md("`/migrate status` in the migration channel has the same.")],
        )
    )
    return {"type": "home", "blocks": _blocks(blocks[:100])}


# ---- a wave's progress and results (in the request's thread) ------------------------------------

BAR_WIDTH = 20


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[██████░░░░░░░░░░░░░░]  30%` — text, so it reads the same in notifications and screen readers."""
    share = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
    filled = round(share * width)
    return f"`[{'█' * filled}{'░' * (width - filled)}]` {round(share * 100):3d}%"


def progress_facts(event: WaveProgress) -> JSON:
    return {
        "wave": event.wave.label,
        "phase": event.phase,
        "nodes_total": event.nodes_total,
        "nodes_drained": event.nodes_drained,
        "pods_evicted": event.pods_evicted,
        "pods_ready": event.pods_ready,
        "new_nodes_ready": event.new_nodes_ready,
        "al2_nodes_left": event.al2_nodes_left,
        "at": event.at.isoformat(),
    }


def progress_text(event: WaveProgress) -> str:
    return (
        f"{event.wave.label} of {event.wave.cluster}: {event.phase} — nodes {event.nodes_drained}/"
        f"{event.nodes_total}, pods evicted {event.pods_evicted}/{event.pods_total}, "
        f"ready {event.pods_ready}, new Bottlerocket nodes Ready {event.new_nodes_ready}"
    )


def progress_blocks(event: WaveProgress, *, finished: str | None = None) -> list[JSON]:
    title = f"{event.wave.label.capitalize()} — {finished or event.phase}"
    bar = progress_bar(event.nodes_drained, event.nodes_total)
    lines = [
        f"{bar} *{event.nodes_drained}/{event.nodes_total} nodes* drained ({event.nodes_cordoned} cordoned)",
        f"*Pods:* {event.pods_evicted}/{event.pods_total} evicted · {event.pods_ready} Ready on new nodes",
        f"*New Bottlerocket nodes Ready:* {event.new_nodes_ready} · *AL2 nodes left:* {event.al2_nodes_left}",
    ]
    blocks: list[Block] = [
        SectionBlock(block_id=ProgressBlock.STATUS, text=_md(_clip(f"*{title}*\n" + "\n".join(lines), 3000)))
    ]
    if event.held:
        held = "\n".join(f"• {h}" for h in event.held[:20])
        more = f"\n…and {len(event.held) - 20} more" if len(event.held) > 20 else ""
        blocks.append(
            SectionBlock(
                block_id=ProgressBlock.HELD, text=_md(_clip(f"*Held (not evicted):*\n{held}{more}", 3000))
            )
        )
    blocks.append(
        ContextBlock(block_id=ProgressBlock.FOOTER, elements=[_md(f"updated {when_seconds(event.at)}")])
    )
    return _blocks(blocks)


def when_seconds(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_OUTCOME_ICON = {
    "baking": ":bread:",
    "completed": ":large_green_circle:",
    "failed": ":x:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "aborted": ":black_square_for_stop:",
}


def result_text(event: WaveFinished) -> str:
    return f"{event.wave.label} of {event.wave.cluster} finished executing: {event.outcome} — {event.summary}"


def result_blocks(event: WaveFinished) -> list[JSON]:
    icon = _OUTCOME_ICON.get(event.outcome, ":information_source:")
    return _blocks(
        [
            SectionBlock(
                block_id=ProgressBlock.RESULT,
                text=_md(
                    _clip(f"{icon} *Results — {event.wave.label}: {event.outcome}*\n{event.summary}", 3000)
                ),
            ),
            ContextBlock(block_id=ProgressBlock.FOOTER, elements=[_md(f"finished {when_seconds(event.at)}")]),
        ]
    )


def summary_text(event: WaveFinished) -> str:
    """The one line in the channel; the thread has the details."""
    icon = _OUTCOME_ICON.get(event.outcome, ":information_source:")
    first = event.summary.strip().splitlines()[0] if event.summary.strip() else ""
    where = f"{event.wave.label} of {event.wave.cluster}"
    return _clip(f"{icon} {where}: *{event.outcome}* — {first} (details in the thread)", 3000)


def note_text(event: StepFailed | WavePaused | EngineAlert) -> str:
    label = event.wave.label
    if isinstance(event, StepFailed):
        retry = "the engine retries it" if event.will_retry else "the engine will not retry it"
        return _clip(
            f":warning: {label}: step {event.step} on {event.target} failed (attempt {event.attempt}): "
            f"{event.error} — {retry}",
            3000,
        )
    if isinstance(event, WavePaused):
        return _clip(
            f":double_vertical_bar: {label} paused: {event.reason}. `/migrate resume` continues it.", 3000
        )
    objects = f" ({', '.join(event.objects[:10])})" if event.objects else ""
    return _clip(f":rotating_light: {label}: {event.kind.replace('_', ' ')} — {event.summary}{objects}", 3000)
