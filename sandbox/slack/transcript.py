"""A channel as a person would read it: Block Kit rendered as plain text, threads indented.

The demo prints these, and a failing end-to-end test shows one, so they favour what a reader needs
(who said what, which buttons were there, what was edited and who saw an ephemeral) over layout.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from typing import Any

from sandbox.slack.workspace import JSON, Message, Workspace

RULE = "─" * 40
_MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>|<(https?://[^>|]+)(?:\|([^>]*))?>")


def transcript(workspace: Workspace, channel: str, *, times: bool = False) -> str:
    """Every message of `channel` with its thread replies and the ephemeral messages, in time order."""
    with workspace.lock:
        c = workspace.channel(channel)
        title = f"#{c.name}"
        if c.is_im:
            other = workspace.users.get(c.im_user)
            title = f"DM with @{other.name if other else c.im_user}"
        lines = [title, RULE]
        entries: list[tuple[str, Message, bool]] = []
        for m in workspace.channel_messages(c.id):
            entries.append((m.ts, m, False))
        for e in workspace.ephemerals(c.id):
            if e.thread_ts is None:
                entries.append((e.ts, e, False))
        entries.sort(key=lambda x: _key(x[0]))
        for _, m, _ in entries:
            lines.extend(render_message(workspace, m, times=times))
            if m.visible_to is None and not m.is_reply:
                thread = list(workspace.thread(c.id, m.ts))
                thread += [e for e in workspace.ephemerals(c.id) if e.thread_ts == m.ts]
                thread.sort(key=lambda r: _key(r.ts))
                for r in thread:
                    lines.extend("    │ " + line for line in render_message(workspace, r, times=times))
        return "\n".join(lines) + "\n"


def _key(ts: str) -> tuple[int, int]:
    s, _, us = ts.partition(".")
    return int(s), int(us or 0)


def render_message(workspace: Workspace, m: Message, *, times: bool = False) -> list[str]:
    who = workspace.users[m.user].name if m.user in workspace.users else m.user
    head = f"@{who}"
    if m.bot_id:
        head += " (app)"
    if times:
        when = datetime.datetime.fromtimestamp(_key(m.ts)[0], tz=datetime.UTC).strftime("%H:%M:%S")
        head = f"[{when}] {head}"
    marks = []
    if m.visible_to is not None:
        seen_by = workspace.users[m.visible_to].name if m.visible_to in workspace.users else m.visible_to
        marks.append(f"only visible to @{seen_by}")
    if m.edited is not None:
        marks.append("edited")
    if m.is_reply and m.reply_broadcast:
        marks.append("also sent to the channel")
    if marks:
        head += " (" + ", ".join(marks) + ")"
    body = render_blocks(workspace, m.blocks) if m.blocks else []
    if not body and m.text:
        body = mrkdwn(workspace, m.text).splitlines()
    for f in m.files:
        body.append(f"[file: {f.get('title') or f.get('name')}]")
    if m.reactions:
        body.append(" ".join(f":{name}: {len(users)}" for name, users in m.reactions.items()))
    return [head + ":", *("  " + line for line in body)]


def render_blocks(workspace: Workspace, blocks: Iterable[JSON]) -> list[str]:
    out: list[str] = []
    for b in blocks:
        kind = b.get("type")
        if kind == "header":
            out.append(f"**{_text(workspace, b.get('text'))}**")
        elif kind == "section":
            if b.get("text"):
                out.extend(_text(workspace, b["text"]).splitlines())
            for f in b.get("fields") or []:
                out.append("  • " + _text(workspace, f).replace("\n", " "))
            acc = b.get("accessory")
            if isinstance(acc, dict) and acc.get("type") != "image":
                out.append(_element(workspace, acc))
        elif kind == "divider":
            out.append(RULE)
        elif kind == "context":
            parts = [
                f"[image: {el.get('alt_text', '')}]" if el.get("type") == "image" else _text(workspace, el)
                for el in b.get("elements") or []
            ]
            out.append("  " + " · ".join(parts))
        elif kind == "actions":
            out.append(" ".join(_element(workspace, el) for el in b.get("elements") or []))
        elif kind == "image":
            out.append(f"[image: {b.get('alt_text', '')}]")
        elif kind == "rich_text":
            out.extend(_rich_text(b).splitlines())
        elif kind == "input":
            out.append(f"{_text(workspace, b.get('label'))}: [{b.get('element', {}).get('type', 'input')}]")
        else:
            out.append(f"[{kind} block]")
    return out


def _text(workspace: Workspace, obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    return mrkdwn(workspace, text) if obj.get("type") == "mrkdwn" else text


def _element(workspace: Workspace, el: JSON) -> str:
    kind = el.get("type")
    if kind == "button":
        return f"[{_text(workspace, el.get('text'))}]"
    if kind == "overflow":
        return "[⋯]"
    placeholder = _text(workspace, el.get("placeholder")) or str(kind)
    return f"[{placeholder} ▾]"


def _rich_text(block: JSON) -> str:
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                parts.append(str(node.get("text", "")))
            elif node.get("type") == "link":
                parts.append(str(node.get("text") or node.get("url", "")))
            elif node.get("type") == "user":
                parts.append(f"<@{node.get('user_id')}>")
            for child in node.get("elements") or []:
                walk(child)
            if node.get("type") in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
                parts.append("\n")
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(block.get("elements"))
    return "".join(parts).strip()


def mrkdwn(workspace: Workspace, text: str) -> str:
    """Slack's angle-bracket mentions and links as a reader sees them (@alice, #channel, @sre)."""

    def sub(match: re.Match[str]) -> str:
        sigil, target, label, url, url_label = match.groups()
        if url is not None:
            return f"{url_label} ({url})" if url_label else url
        if sigil == "@":
            user = workspace.users.get(target)
            return f"@{user.name}" if user else f"@{label or target}"
        if sigil == "#":
            c = workspace.channels.get(target)
            return f"#{c.name}" if c else f"#{label or target}"
        if target.startswith("subteam^"):
            group = workspace.usergroups.get(target.removeprefix("subteam^"))
            return f"@{group.handle}" if group else (label or "@group")
        return f"@{label or target}"

    return _MENTION.sub(sub, text)
