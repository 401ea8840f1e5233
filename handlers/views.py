"""Block Kit for every message and view the bot shows, built with slack_sdk's models.

Pure: data in, JSON-ready dicts out. Ids come from handlers/ids.py; button values carry a
RequestRef and nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
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
from bot.plan import PlanSummary
from bot.services.requests import RequestCard
from handlers.ids import HomeBlock, WaveAction, WaveBlock
from storage.repositories import AuditEventView, WaveView

JSON = dict[str, Any]
READINESS_PENDING = (
    "*Readiness:* arrives with the reports issue (per-wave readiness and security summaries) — "
    "no verdict is shown until then."
)
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
        SectionBlock(block_id=WaveBlock.READINESS, text=_md(READINESS_PENDING)),
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
        return ":hourglass: *Expired* before anyone decided."
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


def home_view(waves_by_cluster: Mapping[str, Sequence[WaveView]]) -> JSON:
    blocks: list[Block] = [
        HeaderBlock(block_id=HomeBlock.HEADER, text=PlainTextObject(text="AL2 → Bottlerocket migration"))
    ]
    for cluster, waves in waves_by_cluster.items():
        lines = [_wave_line(w) for w in waves] or ["no waves registered"]
        blocks += [
            DividerBlock(),
            SectionBlock(
                block_id=f"{HomeBlock.CLUSTER}.{cluster}"[:255],
                text=_md(_clip(f"*{cluster}*\n" + "\n".join(lines), 3000)),
            ),
        ]
    blocks.append(
        ContextBlock(
            block_id=HomeBlock.FOOTER,
            elements=[_md("AL2 nodes left and the last canary arrive with the engine and canary issues.")],
        )
    )
    return {"type": "home", "blocks": _blocks(blocks[:100])}
