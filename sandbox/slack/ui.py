"""The emulated workspace as a web page: channels, messages rendered from their Block Kit, threads,
the App Home, ephemeral messages for the person you act as, a message box and the buttons.

Served by the emulator's own HTTP server (`SlackEmulator.serve_ui = True`, then `GET /ui`). Whatever a
person does on the page reaches the app the way real Slack sends it: a signed request to the app's
Request URL built by `SlackActors` (slash commands, block_actions, app_home_opened,
view_submission) — the page never talks to the app any other way. What the app answers lands in the
workspace through the Web API and response_urls, and the page shows it on its next poll.

Plain server-rendered HTML: every form works without JavaScript (POST, then 303 back to the page);
a few lines of script poll `GET /ui/pane` once a second and swap the pane when the workspace's
version moved.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.slack.actors import Delivery, SlackActors, SlackUser
from sandbox.slack.errors import SlackError
from sandbox.slack.transcript import _rich_text
from sandbox.slack.workspace import JSON, Channel, Message, Workspace, ts_key

HOME = "home"
POLL_MS = 1000
_MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>|<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")
_PRE = re.compile(r"```(.*?)```", re.S)
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
# The shortcodes apps commonly send; others stay as typed, as Slack shows unknown custom emoji.
EMOJI = {
    "warning": "⚠️", "no_entry": "⛔", "rotating_light": "🚨", "x": "❌", "white_check_mark": "✅",
    "large_green_circle": "🟢", "large_yellow_circle": "🟡", "red_circle": "🔴", "white_circle": "⚪",
    "no_entry_sign": "🚫", "leftwards_arrow_with_hook": "↩️", "information_source": "ℹ️",
    "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "double_vertical_bar": "⏸️", "bread": "🍞",
    "black_square_for_stop": "⏹️", "arrows_counterclockwise": "🔄", "rewind": "⏪", "mag": "🔍",
    "tada": "🎉", "rocket": "🚀", "heavy_check_mark": "✔️", "eyes": "👀", "thumbsup": "👍", "+1": "👍",
}  # fmt: skip


Act = Callable[[SlackUser, dict[str, str]], Delivery | None]


class SlackUi:
    """The page's routes over one workspace; `request_url()` is the app's Request URL right now."""

    def __init__(self, workspace: Workspace, request_url: Callable[[], str | None]) -> None:
        self.workspace = workspace
        self.request_url = request_url
        self.enabled = False

    def routes(self) -> list[Route]:
        return [
            Route("/ui", self._page, methods=["GET"]),
            Route("/ui/pane", self._pane, methods=["GET"]),
            Route("/ui/command", self._command, methods=["POST"]),
            Route("/ui/click", self._click, methods=["POST"]),
            Route("/ui/home", self._home, methods=["POST"]),
            Route("/ui/submit", self._submit, methods=["POST"]),
        ]

    # ---- who and where ---------------------------------------------------------------------------

    def _people(self) -> list[str]:
        with self.workspace.lock:
            return [u.id for u in self.workspace.users.values() if not u.is_bot and not u.deleted]

    def _where(self, params: Any) -> tuple[str, str]:
        """(user id, channel id or "home") from the query or form; the first person and the first
        channel they are in by default."""
        ws = self.workspace
        people = self._people()
        try:
            user = ws.user(str(params.get("as") or people[0])).id
        except SlackError:
            user = people[0]
        if user not in people:  # the page plays people, never the app's own bot user
            user = people[0]
        place = str(params.get("c") or "")
        if place == HOME:
            return user, HOME
        try:
            c = ws.channel(place)
            # A private conversation someone is not in does not exist for them.
            if not (c.is_private and user not in c.members):
                return user, c.id
        except SlackError:
            pass
        channels = self._channels(user)
        return user, channels[0].id if channels else HOME

    def _channels(self, user: str) -> list[Channel]:
        """What the person sees in the sidebar: the channels they are in, then the DMs with the app."""
        with self.workspace.lock:
            chans = [c for c in self.workspace.channels.values() if user in c.members]
            return sorted(chans, key=lambda c: (c.is_im, c.name))

    def _person(self, user: str) -> SlackUser:
        url = self.request_url()
        if not url:
            raise SlackError("no_request_url")
        return SlackActors(self.workspace, url)[user]

    # ---- pages -----------------------------------------------------------------------------------

    async def _page(self, request: Request) -> Response:
        if not self.enabled:
            return _off()
        user, place = self._where(request.query_params)
        notice = request.query_params.get("notice", "")
        return HTMLResponse(self.page(user, place, notice))

    async def _pane(self, request: Request) -> Response:
        if not self.enabled:
            return _off()
        user, place = self._where(request.query_params)
        since = request.query_params.get("since")
        version = str(self.workspace.version)
        if since == version:
            return Response(status_code=204, headers={"X-Workspace-Version": version})
        return HTMLResponse(self.pane(user, place), headers={"X-Workspace-Version": version})

    def page(self, user: str, place: str, notice: str = "") -> str:
        ws = self.workspace
        with ws.lock:
            me = ws.users[user]
            title = "App Home" if place == HOME else _channel_title(ws, ws.channels[place], user)
            people = "".join(
                f'<option value="{_e(ws.users[u].name)}"{" selected" if u == user else ""}>'
                f"{_e(ws.users[u].name)} — {_e(ws.users[u].real_name)}{_e(_roles(ws, u))}</option>"
                for u in self._people()
            )
            sidebar = "".join(
                f'<li><a class="{"here" if c.id == place else ""}" href="{_url(user=me.name, c=c.id)}">'
                f"{_e(_channel_title(ws, c, user))}</a></li>"
                for c in self._channels(user)
            )
            bot = ws.users[ws.bot_user_id].name
            pane = self.pane(user, place)
            version = ws.version
        composer = ""
        if place != HOME:
            composer = (
                f'<form class="composer" method="post" action="/ui/command">'
                f'<input type="hidden" name="as" value="{_e(me.name)}">'
                f'<input type="hidden" name="c" value="{_e(place)}">'
                f'<input id="message" name="text" autocomplete="off" autofocus '
                f'placeholder="Message {_e(title)} — or /migrate next-wave, /migrate status …">'
                f'<button type="submit">Send</button></form>'
            )
        banner = f'<p class="notice" role="alert">{_e(notice)}</p>' if notice else ""
        return _PAGE.format(
            title=_e(title),
            team=_e(ws.team_name),
            people=people,
            me=_e(me.name),
            place=_e(place),
            home_form=(
                f'<form method="post" action="/ui/home"><input type="hidden" name="as" value="{_e(me.name)}">'
                f'<button class="link{" here" if place == HOME else ""}" id="open-home">'
                f"@{_e(bot)} · App Home</button></form>"
            ),
            sidebar=sidebar,
            banner=banner,
            pane=pane,
            composer=composer,
            version=version,
            pane_url=_js_string(f"/ui/pane?{urllib.parse.urlencode({'as': me.name, 'c': place})}"),
            poll_ms=POLL_MS,
        )

    def pane(self, user: str, place: str) -> str:
        """The main pane: the App Home view, or a channel's messages with their threads and the
        ephemeral messages only this person sees, plus any modal the app opened for them."""
        ws = self.workspace
        with ws.lock:
            me = ws.users[user].name
            if place == HOME:
                view = ws.home_view(user)
                body = (
                    _blocks(ws, view.get("blocks") or [], me, view_id=str(view["id"]))
                    if view
                    else '<p class="empty">The app has not published a Home view for you yet.</p>'
                )
                out = f'<section class="home">{body}</section>'
            else:
                out = self._channel_pane(user, place)
            for modal in ws.open_modals(user):
                out += _modal(ws, modal, me)
            return out

    def _channel_pane(self, user: str, channel: str) -> str:
        ws = self.workspace
        me = ws.users[user].name
        mine = ws.ephemerals(channel, user)
        top: list[Message] = [*ws.channel_messages(channel), *(e for e in mine if e.thread_ts is None)]
        top.sort(key=lambda m: ts_key(m.ts))
        if not top:
            return '<p class="empty">No messages yet.</p>'
        items = []
        for m in top:
            html_ = _message(ws, m, me, channel)
            if m.visible_to is None and not m.is_reply:
                thread: list[Message] = [
                    *ws.thread(channel, m.ts),
                    *(e for e in mine if e.thread_ts == m.ts and e.ts != m.ts),
                ]
                thread.sort(key=lambda r: ts_key(r.ts))
                if thread:
                    replies = "".join(_message(ws, r, me, channel) for r in thread)
                    count = sum(1 for r in thread if r.visible_to is None)
                    html_ += (
                        f'<div class="thread" data-thread="{_e(m.ts)}"><div class="thread-head">'
                        f"{count} repl{'y' if count == 1 else 'ies'}</div>{replies}</div>"
                    )
            items.append(f'<li class="entry">{html_}</li>')
        return f'<ol class="messages">{"".join(items)}</ol>'

    # ---- actions: each one is a signed request to the app ----------------------------------------

    async def _act(self, request: Request, act: Act) -> Response:
        if not self.enabled:
            return _off()
        # HTML forms post application/x-www-form-urlencoded (no multipart parser needed).
        body = (await request.body()).decode("utf-8", "replace")
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        user, place = self._where(form)
        try:
            person = self._person(user)
            delivery = await asyncio.to_thread(act, person, form)
            notice = _delivery_notice(delivery)
        except SlackError as e:
            notice = f"Slack refused that: {e.error}"
        except LookupError as e:
            notice = str(e)
        back = form.get("back") or place
        return RedirectResponse(_url(user=self.workspace.users[user].name, c=back, notice=notice), 303)

    async def _command(self, request: Request) -> Response:
        def act(person: SlackUser, form: dict[str, str]) -> Delivery | None:
            text = form.get("text", "").strip()
            channel = form["c"]
            if not text:
                return None
            if text.startswith("/"):
                command, _, rest = text.partition(" ")
                return person.command(command, rest.strip(), channel=channel)
            person.say(channel, text, thread_ts=form.get("thread_ts") or None)
            return None

        return await self._act(request, act)

    async def _click(self, request: Request) -> Response:
        def act(person: SlackUser, form: dict[str, str]) -> Delivery:
            value = form.get("value") or None
            if form.get("view_id"):
                return person.click_in_view(form["view_id"], form["action_id"], value)
            return person.click(channel=form["c"], ts=form["ts"], action_id=form["action_id"], value=value)

        return await self._act(request, act)

    async def _home(self, request: Request) -> Response:
        def act(person: SlackUser, form: dict[str, str]) -> Delivery:
            form["back"] = HOME
            return person.open_home()

        return await self._act(request, act)

    async def _submit(self, request: Request) -> Response:
        def act(person: SlackUser, form: dict[str, str]) -> Delivery:
            values: dict[str, dict[str, Any]] = {}
            for key, value in form.items():
                if key.startswith("input:"):
                    _, block_id, action_id = key.split(":", 2)
                    values.setdefault(block_id, {})[action_id] = value
            return person.submit_view(form["view_id"], values)

        return await self._act(request, act)


# ---- rendering ---------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _url_attr(url: object) -> str:
    """An app-supplied URL for href/src: http(s) only, so a message can't carry a javascript: link."""
    text = str(url or "")
    return _e(text) if text.startswith(("http://", "https://")) else "#"


def _url(*, user: str, c: str, notice: str = "") -> str:
    query = {"as": user, "c": c}
    if notice:
        query["notice"] = notice
    return "/ui?" + urllib.parse.urlencode(query)


def _off() -> Response:
    return PlainTextResponse(
        "The interactive page is off: SlackEmulator.serve_ui = True (migratebot demo --interactive) "
        "turns it on.",
        status_code=404,
    )


def _roles(ws: Workspace, user: str) -> str:
    groups = [f"@{g.handle}" for g in ws.usergroups.values() if user in g.members]
    return f" ({', '.join(groups)})" if groups else ""


def _channel_title(ws: Workspace, c: Channel, viewer: str) -> str:
    if c.is_im:
        other = next((m for m in c.members if m != viewer), c.im_user)
        return f"DM with @{ws.users[other].name}" if other in ws.users else f"DM {c.id}"
    return f"{'🔒' if c.is_private else '#'}{c.name}"


def _delivery_notice(d: Delivery | None) -> str:
    """What Slack tells the person when the app did not answer in time or answered an error."""
    if d is None or d.acked_in_time:
        return ""
    if d.status == 200:
        return f"The app took {d.elapsed:.1f} s to answer (Slack waits 3 s): “operation_timeout”"
    return f"The app answered HTTP {d.status}: “dispatch_failed” — {d.text[:200]}"


def _message(ws: Workspace, m: Message, me: str, channel: str) -> str:
    author = ws.users.get(m.user)
    name = author.name if author else m.user
    marks = []
    if m.bot_id:
        marks.append('<span class="tag">APP</span>')
    if m.visible_to is not None:
        marks.append('<span class="tag only">Only visible to you</span>')
    if m.edited is not None:
        marks.append('<span class="edited">(edited)</span>')
    if m.is_reply and m.reply_broadcast:
        marks.append('<span class="edited">also sent to the channel</span>')
    when = _time(m.ts)
    if m.blocks:
        body = _blocks(ws, m.blocks, me, channel=channel, ts=m.ts)
    else:
        body = f'<div class="text">{_mrkdwn(ws, m.text)}</div>'
    for a in m.attachments or []:
        color = _e(a.get("color", "#ddd"))
        inner = _blocks(ws, a["blocks"], me, channel=channel, ts=m.ts) if a.get("blocks") else ""
        text = _mrkdwn(ws, str(a.get("text") or a.get("fallback") or ""))
        body += f'<div class="attachment" style="border-color:{color}">{inner}{text}</div>'
    for f in m.files:
        body += f'<div class="file">📎 {_e(f.get("title") or f.get("name") or "file")}</div>'
    if m.reactions:
        body += (
            '<div class="reactions">'
            + "".join(
                f'<span class="reaction">{EMOJI.get(n, f":{_e(n)}:")} {len(us)}</span>'
                for n, us in m.reactions.items()
            )
            + "</div>"
        )
    kind = "message ephemeral" if m.visible_to is not None else "message"
    return (
        f'<article class="{kind}" data-ts="{_e(m.ts)}" data-user="{_e(name)}">'
        f'<header><b class="author">{_e(name)}</b> {" ".join(marks)} <time>{when}</time></header>'
        f"{body}</article>"
    )


def _time(ts: str) -> str:
    return datetime.datetime.fromtimestamp(ts_key(ts)[0], tz=datetime.UTC).strftime("%H:%M:%S")


def _blocks(
    ws: Workspace,
    blocks: list[JSON],
    me: str,
    *,
    channel: str = "",
    ts: str = "",
    view_id: str = "",
) -> str:
    """Block Kit as HTML: header, section (text, fields, accessory), context, actions, divider,
    image, rich_text, input; interactive elements become forms that POST /ui/click."""

    def element(block: JSON, el: JSON) -> str:
        return _element(ws, el, me, channel=channel, ts=ts, view_id=view_id)

    out: list[str] = []
    for b in blocks:
        kind = b.get("type")
        bid = _e(b.get("block_id", ""))
        if kind == "header":
            out.append(f'<h3 class="b-header" data-block="{bid}">{_e(_plain(b.get("text")))}</h3>')
        elif kind == "section":
            parts = []
            if b.get("text"):
                parts.append(f'<div class="text">{_text(ws, b["text"])}</div>')
            if b.get("fields"):
                parts.append(
                    '<div class="fields">'
                    + "".join(f'<div class="field">{_text(ws, f)}</div>' for f in b["fields"])
                    + "</div>"
                )
            acc = b.get("accessory")
            if isinstance(acc, dict):
                parts.append(f'<div class="accessory">{element(b, acc)}</div>')
            out.append(f'<div class="b-section" data-block="{bid}">{"".join(parts)}</div>')
        elif kind == "divider":
            out.append("<hr>")
        elif kind == "context":
            parts = [
                f"<span>🖼 {_e(el.get('alt_text', ''))}</span>"
                if el.get("type") == "image"
                else f"<span>{_text(ws, el)}</span>"
                for el in b.get("elements") or []
                if isinstance(el, dict)
            ]
            out.append(f'<div class="b-context" data-block="{bid}">{" · ".join(parts)}</div>')
        elif kind == "actions":
            els = "".join(element(b, el) for el in b.get("elements") or [] if isinstance(el, dict))
            out.append(f'<div class="b-actions" data-block="{bid}">{els}</div>')
        elif kind == "image":
            out.append(
                f'<figure class="b-image"><img src="{_url_attr(b.get("image_url"))}" '
                f'alt="{_e(b.get("alt_text", ""))}"></figure>'
            )
        elif kind == "rich_text":
            out.append(f'<div class="text">{_mrkdwn(ws, _rich_text(b))}</div>')
        elif kind == "input":
            out.append(
                f'<label class="b-input">{_e(_plain(b.get("label")))}: '
                f"<em>{_e((b.get('element') or {}).get('type', 'input'))}</em></label>"
            )
        else:
            out.append(f'<div class="b-unknown">[{_e(kind)} block]</div>')
    return f'<div class="blocks">{"".join(out)}</div>'


def _element(ws: Workspace, el: JSON, me: str, *, channel: str, ts: str, view_id: str) -> str:
    kind = el.get("type")
    action_id = str(el.get("action_id", ""))
    if kind == "image":
        src, alt = _url_attr(el.get("image_url")), _e(el.get("alt_text", ""))
        return f'<img class="thumb" src="{src}" alt="{alt}">'
    hidden = {"as": me, "action_id": action_id}
    if view_id:
        hidden.update(view_id=view_id, c=HOME)
    else:
        hidden.update(c=channel, ts=ts)
    fields = "".join(f'<input type="hidden" name="{k}" value="{_e(v)}">' for k, v in hidden.items())
    confirm = el.get("confirm")
    onsubmit = ""
    if isinstance(confirm, dict):
        question = f"{_plain(confirm.get('title'))}\n\n{_plain(confirm.get('text'))}"
        onsubmit = f' onsubmit="return confirm({_e(_js_string(question))})"'
    if kind == "button":
        label = _e(_plain(el.get("text")))
        style = _e(el.get("style", "default"))
        if el.get("url"):
            # Slack opens the link and also sends block_actions; the page only opens it.
            link = f'href="{_url_attr(el["url"])}" target="_blank" rel="noopener"'
            return f'<a class="button {style}" {link}>{label}</a>'
        value = f'<input type="hidden" name="value" value="{_e(el["value"])}">' if "value" in el else ""
        return (
            f'<form class="inline" method="post" action="/ui/click"{onsubmit}>{fields}{value}'
            f'<button type="submit" class="button {style}" data-action="{_e(action_id)}">{label}</button>'
            "</form>"
        )
    options = el.get("options") or [o for g in el.get("option_groups") or [] for o in g.get("options") or []]
    if kind in ("static_select", "overflow", "radio_buttons") and options:
        placeholder = _plain(el.get("placeholder")) or ("⋯" if kind == "overflow" else "Choose")
        opts = "".join(
            f'<option value="{_e(o.get("value", ""))}">{_e(_plain(o.get("text")))}</option>'
            for o in options
            if isinstance(o, dict)
        )
        return (
            f'<form class="inline" method="post" action="/ui/click"{onsubmit}>{fields}'
            f'<select name="value" data-action="{_e(action_id)}" onchange="this.form.requestSubmit()">'
            f'<option value="" selected disabled>{_e(placeholder)}</option>{opts}</select></form>'
        )
    placeholder = _plain(el.get("placeholder")) or str(kind)
    return f'<span class="button disabled" title="not emulated on this page">{_e(placeholder)} ▾</span>'


def _modal(ws: Workspace, view: JSON, me: str) -> str:
    """An open modal: its blocks, plain-text inputs and Submit (a view_submission to the app)."""
    vid = _e(view["id"])
    inputs = []
    for b in view.get("blocks") or []:
        if b.get("type") == "input" and isinstance(b.get("element"), dict):
            el = b["element"]
            name = _e(f"input:{b.get('block_id', '')}:{el.get('action_id', '')}")
            tag = f'<textarea name="{name}"></textarea>' if el.get("multiline") else f'<input name="{name}">'
            inputs.append(f'<label class="b-input">{_e(_plain(b.get("label")))} {tag}</label>')
    others = [b for b in view.get("blocks") or [] if b.get("type") != "input"]
    submit = _plain(view.get("submit")) or "Submit"
    return (
        f'<div class="modal" data-view="{vid}"><h3>{_e(_plain(view.get("title")))}</h3>'
        f"{_blocks(ws, others, me, view_id=str(view['id']))}"
        f'<form method="post" action="/ui/submit"><input type="hidden" name="as" value="{_e(me)}">'
        f'<input type="hidden" name="view_id" value="{vid}">{"".join(inputs)}'
        f'<button type="submit" class="button primary">{_e(submit)}</button></form></div>'
    )


def _plain(obj: object) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _text(ws: Workspace, obj: object) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    return _mrkdwn(ws, text) if obj.get("type") == "mrkdwn" else _e(text).replace("\n", "<br>")


def _js_string(text: str) -> str:
    """A JavaScript string literal, safe inside a <script> element and an HTML attribute."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _mrkdwn(ws: Workspace, text: str) -> str:
    """Slack's mrkdwn as HTML: mentions and links resolved, *bold*, _italic_, ~strike~, `code`,
    ```pre```, line breaks. Slack's own escapes (&amp; &lt; &gt;) are undone before HTML-escaping."""
    out: list[str] = []
    pos = 0
    for match in _MENTION.finditer(text):
        out.append(_inline(text[pos : match.start()]))
        out.append(_mention(ws, match))
        pos = match.end()
    out.append(_inline(text[pos:]))
    joined = "".join(out)
    joined = _PRE.sub(lambda m: f"<pre>{m.group(1).strip(chr(10))}</pre>", joined)
    return joined.replace("\n", "<br>")


def _inline(segment: str) -> str:
    plain = segment.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    s = _e(plain)
    s = _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), s)
    s = _CODE.sub(r"<code>\1</code>", s)
    s = _BOLD.sub(r"<b>\1</b>", s)
    s = _ITALIC.sub(r"<i>\1</i>", s)
    return _STRIKE.sub(r"<s>\1</s>", s)


def _mention(ws: Workspace, match: re.Match[str]) -> str:
    sigil, target, label, url, url_label = match.groups()
    if url is not None:
        return f'<a href="{_e(url)}" target="_blank" rel="noopener">{_e(url_label or url)}</a>'
    if sigil == "@":
        user = ws.users.get(target)
        return f'<span class="mention">@{_e(user.name if user else label or target)}</span>'
    if sigil == "#":
        c = ws.channels.get(target)
        return f'<span class="mention">#{_e(c.name if c else label or target)}</span>'
    if target.startswith("subteam^"):
        group = ws.usergroups.get(target.removeprefix("subteam^"))
        return f'<span class="mention">@{_e(group.handle if group else label or "group")}</span>'
    return f'<span class="mention">@{_e(label or target)}</span>'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {team} (sandbox Slack)</title>
<style>
body {{ margin: 0; font: 15px/1.45 system-ui, sans-serif; color: #1d1c1d; display: grid;
  grid-template-columns: 250px 1fr; height: 100vh; }}
nav {{ background: #3f0e40; color: #fff; padding: 12px; overflow-y: auto; }}
nav h1 {{ font-size: 17px; margin: 0 0 10px; }}
nav select {{ width: 100%; padding: 4px; }}
nav ul {{ list-style: none; padding: 0; margin: 12px 0; }}
nav a, nav button.link {{ color: #e8d6e8; text-decoration: none; display: block; padding: 3px 6px;
  border-radius: 4px; background: none; border: 0; font: inherit; cursor: pointer; text-align: left;
  width: 100%; }}
nav a.here, nav button.here {{ background: #1164a3; color: #fff; }}
main {{ display: flex; flex-direction: column; min-height: 0; }}
main > h2 {{ margin: 0; padding: 10px 16px; border-bottom: 1px solid #ddd; font-size: 17px; }}
#pane {{ flex: 1; overflow-y: auto; padding: 8px 16px; }}
ol.messages {{ list-style: none; padding: 0; margin: 0; }}
.message {{ padding: 6px 0; }}
.message header time {{ color: #888; font-size: 12px; margin-left: 6px; }}
.ephemeral {{ background: #f8f4e5; border-left: 3px solid #e8b339; padding-left: 8px; }}
.tag {{ background: #ddd; font-size: 10px; padding: 0 3px; border-radius: 2px; }}
.tag.only {{ background: #e8b339; }}
.edited {{ color: #888; font-size: 12px; }}
.thread {{ margin: 4px 0 8px 24px; border-left: 3px solid #ccc; padding-left: 10px; }}
.thread-head {{ color: #1264a3; font-size: 13px; font-weight: 600; }}
.b-header {{ margin: 4px 0; font-size: 16px; }}
.fields {{ display: grid; grid-template-columns: 1fr 1fr; gap: 2px 16px; margin: 4px 0; }}
.b-section {{ margin: 4px 0; display: flex; justify-content: space-between; gap: 8px; flex-wrap: wrap; }}
.b-section > .text, .b-section > .fields {{ flex: 1 1 60%; }}
.b-context {{ color: #616061; font-size: 13px; margin: 4px 0; }}
.b-actions {{ margin: 6px 0; display: flex; gap: 6px; flex-wrap: wrap; }}
hr {{ border: 0; border-top: 1px solid #ddd; }}
form.inline {{ display: inline; margin: 0; }}
.button {{ font: inherit; font-size: 14px; padding: 3px 12px; border: 1px solid #bbb; border-radius: 4px;
  background: #fff; cursor: pointer; text-decoration: none; color: inherit; }}
.button.primary {{ background: #007a5a; color: #fff; border-color: #007a5a; }}
.button.danger {{ background: #e01e5a; color: #fff; border-color: #e01e5a; }}
.button.disabled {{ color: #888; cursor: default; }}
.mention {{ background: #e8f5fa; color: #1264a3; border-radius: 3px; padding: 0 2px; }}
code {{ background: #f6f6f6; border: 1px solid #ddd; border-radius: 3px; padding: 0 3px; }}
pre {{ background: #f6f6f6; border: 1px solid #ddd; padding: 6px; white-space: pre-wrap; }}
.attachment {{ border-left: 4px solid #ddd; padding-left: 8px; }}
.modal {{ border: 2px solid #1264a3; border-radius: 6px; padding: 8px 12px; margin: 12px 0; }}
.notice {{ background: #fde8ec; color: #8a1538; margin: 0; padding: 6px 16px; }}
.empty {{ color: #888; }}
.composer {{ display: flex; gap: 6px; padding: 10px 16px; border-top: 1px solid #ddd; }}
.composer input {{ flex: 1; font: inherit; padding: 6px 8px; }}
</style></head>
<body>
<nav>
  <h1>{team}</h1>
  <form method="get" action="/ui" id="who">
    <label for="as">Act as</label>
    <input type="hidden" name="c" value="{place}">
    <select id="as" name="as" onchange="this.form.submit()">{people}</select>
    <noscript><button>Switch</button></noscript>
  </form>
  <ul>{sidebar}</ul>
  {home_form}
</nav>
<main data-as="{me}" data-version="{version}">
  <h2>{title}</h2>
  {banner}
  <div id="pane">{pane}</div>
  {composer}
</main>
<script>
(() => {{
  const pane = document.getElementById("pane");
  let version = document.querySelector("main").dataset.version;
  const bottom = () => pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40;
  pane.scrollTop = pane.scrollHeight;
  async function poll() {{
    try {{
      const r = await fetch({pane_url} + "&since=" + version, {{cache: "no-store"}});
      if (r.status === 200) {{
        const stick = bottom();
        pane.innerHTML = await r.text();
        if (stick) pane.scrollTop = pane.scrollHeight;
      }}
      version = r.headers.get("X-Workspace-Version") || version;
      document.querySelector("main").dataset.version = version;
    }} catch (e) {{ /* the sandbox stopped: keep the last page */ }}
    setTimeout(poll, {poll_ms});
  }}
  setTimeout(poll, {poll_ms});
}})();
</script>
</body></html>
"""
