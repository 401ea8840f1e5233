"""The emulated workspace's state and every rule about changing it, independent of HTTP.

The Web API (api.py), the signed user client (actors.py), the transcript and a future web page all
read and change one `Workspace`. Its methods take the acting user's id and raise `SlackError` with
Slack's error codes, so the HTTP layer only parses arguments and serialises answers.

Thread-safe: uvicorn serves the API on its own thread while tests and actors read the store from
theirs; one re-entrant lock guards everything and a condition wakes `wait_for` callers on change.
"""

from __future__ import annotations

import base64
import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sandbox.slack.blockkit import (
    MAX_ATTACHMENTS,
    MAX_MESSAGE_TEXT,
    Surface,
    validate_blocks,
    validate_view,
)
from sandbox.slack.errors import SlackError, invalid_blocks
from sandbox.slack.seed import WorkspaceSeed

JSON = dict[str, Any]
T = TypeVar("T")

# Slack lets an app use a response_url five times within thirty minutes, and a trigger_id once
# within three seconds ("Handling user interaction").
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
TRIGGER_TTL = 3.0


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    email: str = ""
    tz: str = "UTC"
    is_admin: bool = False
    bot_id: str = ""
    app_id: str = ""
    deleted: bool = False

    def to_slack(self, team_id: str, *, with_email: bool = True) -> JSON:
        profile: JSON = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": team_id,
            "image_48": f"https://avatars.example/{self.id}_48.png",
        }
        if self.email and with_email:
            profile["email"] = self.email
        if self.is_bot:
            profile.update(bot_id=self.bot_id, api_app_id=self.app_id, always_active=True)
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    description: str
    members: list[str]

    def to_slack(self, team_id: str, *, include_users: bool = False) -> JSON:
        out: JSON = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": 1_700_000_000,
            "date_update": 1_700_000_000,
            "date_delete": 0,
            "auto_type": None,
            "created_by": "",
            "prefs": {"channels": [], "groups": []},
            "user_count": len(self.members),
        }
        if include_users:
            out["users"] = list(self.members)
        return out


@dataclass
class Channel:
    id: str
    name: str
    members: list[str]
    is_private: bool = False
    is_im: bool = False
    topic: str = ""
    purpose: str = ""
    created: int = 1_700_000_000
    im_user: str = ""

    def to_slack(self, caller: str, *, include_num_members: bool = False) -> JSON:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        out: JSON = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": False,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": "",
            "creator": self.members[0] if self.members else "",
            "is_ext_shared": False,
            "shared_team_ids": [],
            "is_member": caller in self.members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
        if include_num_members:
            out["num_members"] = len(self.members)
        return out


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    files: list[JSON] = field(default_factory=list)
    edited: JSON | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    bot_id: str = ""
    app_id: str = ""
    # Ephemeral messages exist only for one user and never show up in history.
    visible_to: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class View:
    id: str
    user: str
    payload: JSON
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    state: JSON = field(default_factory=lambda: {"values": {}})


@dataclass
class StoredFile:
    id: str
    name: str
    length: int
    user: str
    created: int
    upload_secret: str
    title: str = ""
    alt_txt: str = ""
    snippet_type: str = ""
    content: bytes | None = None
    channels: list[str] = field(default_factory=list)
    completed: bool = False


@dataclass
class Interaction:
    """What Slack remembers about one user action so the app's answers land in the right place."""

    id: str
    secret: str
    kind: str
    user: str
    channel: str
    message_ts: str | None
    ephemeral: bool
    thread_ts: str | None
    created: float
    response_url: str
    trigger_id: str
    uses: int = 0


@dataclass
class Trigger:
    id: str
    user: str
    created: float
    used: bool = False


def encode_cursor(kind: str, value: str) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(kind: str, cursor: str) -> str:
    try:
        prefix, _, value = base64.b64decode(cursor, validate=True).decode().partition(":")
    except ValueError as e:
        raise SlackError("invalid_cursor") from e
    if prefix != kind or not value:
        raise SlackError("invalid_cursor")
    return value


def _page(items: list[T], cursor: str | None, limit: int) -> tuple[list[T], str]:
    """Offset pages behind an opaque cursor, as users.list and conversations.members page."""
    start = int(decode_cursor("offset", cursor)) if cursor else 0
    chunk = items[start : start + limit]
    nxt = encode_cursor("offset", str(start + limit)) if start + limit < len(items) else ""
    return chunk, nxt


def ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


class Workspace:
    """One Slack team: people, groups, channels, messages, views, files and pending interactions."""

    def __init__(self, seed: WorkspaceSeed) -> None:
        self.seed = seed
        self.team_id = seed.team_id
        self.team_name = seed.team_name
        self.domain = seed.domain
        bot = seed.bot
        self.bot_user_id = bot.user_id
        self.bot_id = bot.bot_id
        self.app_id = bot.app_id
        self.signing_secret = bot.signing_secret
        self.verification_token = bot.verification_token
        self.tokens: dict[str, str] = dict.fromkeys(bot.tokens, bot.user_id)
        self.users: dict[str, User] = {
            bot.user_id: User(
                bot.user_id, bot.name, bot.real_name, True, bot_id=bot.bot_id, app_id=bot.app_id
            )
        }
        for u in seed.users:
            self.users[u.id] = User(u.id, u.name, u.real_name or u.name, u.is_bot, u.email, u.tz, u.is_admin)
        self.usergroups: dict[str, Usergroup] = {
            g.id: Usergroup(g.id, g.handle, g.name or g.handle, g.description, list(g.members))
            for g in seed.usergroups
        }
        self.channels: dict[str, Channel] = {
            c.id: Channel(c.id, c.name, list(c.members), c.is_private, topic=c.topic, purpose=c.purpose)
            for c in seed.channels
        }
        self.messages: dict[str, dict[str, Message]] = {c: {} for c in self.channels}
        self.ephemeral: dict[str, list[Message]] = {c: [] for c in self.channels}
        self._replies: dict[tuple[str, str], list[str]] = {}
        self.views: dict[str, View] = {}
        self.home: dict[str, str] = {}
        self.modals: dict[str, list[str]] = {}
        self.files: dict[str, StoredFile] = {}
        self.interactions: dict[str, Interaction] = {}
        self.triggers: dict[str, Trigger] = {}
        # Filled in by the server once it knows its port: URLs Slack hands out point back at it.
        self.base_url = "http://127.0.0.1"
        self.trigger_ttl = TRIGGER_TTL
        self._fixed_clock = seed.start_ts is not None
        self._last_ts = int((seed.start_ts or 0) * 1_000_000)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.version = 0

    # ---- plumbing --------------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def _touch(self) -> None:
        self.version += 1
        self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Workspace], T | None], timeout: float = 5.0) -> T:
        """Block until `predicate(workspace)` is truthy (checked on every change); return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"workspace did not reach the expected state in {timeout} s")
                self._changed.wait(left)

    def new_ts(self) -> str:
        with self._lock:
            if self._fixed_clock:
                micros = self._last_ts + 100
            else:
                micros = max(int(time.time() * 1_000_000), self._last_ts + 1)
            self._last_ts = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    # ---- lookups ---------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> str:
        if not token:
            raise SlackError("not_authed")
        user = self.tokens.get(token)
        if user is None:
            raise SlackError("invalid_auth")
        return user

    def user(self, ref: str) -> User:
        """A user by id, name or @name (the actors and tests speak in names)."""
        with self._lock:
            if ref in self.users:
                return self.users[ref]
            name = ref.removeprefix("@")
            for u in self.users.values():
                if u.name == name:
                    return u
        raise SlackError("user_not_found")

    def channel(self, ref: str, caller: str | None = None) -> Channel:
        """A conversation by id, name or #name; a user id opens (or finds) the DM with the caller."""
        with self._lock:
            if ref in self.channels:
                return self.channels[ref]
            name = ref.removeprefix("#")
            for c in self.channels.values():
                if c.name == name and not c.is_im:
                    return c
            if caller is not None and ref in self.users:
                return self._open_im(ref, caller)
        raise SlackError("channel_not_found")

    def _open_im(self, user: str, caller: str) -> Channel:
        for c in self.channels.values():
            if c.is_im and set(c.members) == {user, caller}:
                return c
        cid = "D" + user[1:]
        self.channels[cid] = Channel(cid, cid, [caller, user], is_private=True, is_im=True, im_user=user)
        self.messages[cid] = {}
        self.ephemeral[cid] = []
        return self.channels[cid]

    def _visible_channel(self, ref: str, caller: str) -> Channel:
        c = self.channel(ref, caller)
        # A private conversation the caller is not in does not exist for it.
        if c.is_private and caller not in c.members:
            raise SlackError("channel_not_found")
        return c

    def has_scope(self, scope: str) -> bool:
        """Scopes of the bot token; None in the seed grants the usual ones but not the opt-in
        chat:write.public / users:read.email, whose absence changes what Slack answers."""
        scopes = self.seed.bot.scopes
        if scopes is None:
            return scope not in ("chat:write.public", "users:read.email")
        return scope in scopes

    def _posts_unjoined(self, caller: str, c: Channel) -> bool:
        return caller == self.bot_user_id and not c.is_private and self.has_scope("chat:write.public")

    def _member_channel(self, ref: str, caller: str) -> Channel:
        c = self._visible_channel(ref, caller)
        if caller not in c.members:
            raise SlackError("not_in_channel")
        return c

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            c = self.channel(channel)
            msg = self.messages[c.id].get(ts)
            if msg is None:
                for e in self.ephemeral[c.id]:
                    if e.ts == ts:
                        return e
                raise SlackError("message_not_found")
            return msg

    def channel_messages(self, channel: str) -> list[Message]:
        """Top-level messages in posting order (what the channel view shows, broadcasts included)."""
        with self._lock:
            c = self.channel(channel)
            return sorted(
                (m for m in self.messages[c.id].values() if not m.is_reply or m.reply_broadcast),
                key=lambda m: ts_key(m.ts),
            )

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies to the message `ts`, oldest first (without the parent)."""
        with self._lock:
            c = self.channel(channel)
            return [self.messages[c.id][r] for r in self._replies.get((c.id, ts), [])]

    def _store(self, m: Message) -> None:
        """Keep a message and index it under its thread (ts only grow, so appending keeps order)."""
        self.messages[m.channel][m.ts] = m
        if m.is_reply and m.thread_ts is not None:
            self.messages[m.channel][m.thread_ts].thread_ts = m.thread_ts
            self._replies.setdefault((m.channel, m.thread_ts), []).append(m.ts)
        self._touch()

    def _drop(self, m: Message) -> None:
        self.messages[m.channel].pop(m.ts, None)
        if m.is_reply and m.thread_ts is not None:
            replies = self._replies.get((m.channel, m.thread_ts), [])
            if m.ts in replies:
                replies.remove(m.ts)
        self._touch()

    def ephemerals(self, channel: str, user: str | None = None) -> list[Message]:
        with self._lock:
            c = self.channel(channel)
            uid = self.user(user).id if user else None
            return [m for m in self.ephemeral[c.id] if uid is None or m.visible_to == uid]

    # ---- Slack's JSON for a message ----------------------------------------------------------------

    def message_json(self, m: Message) -> JSON:
        out: JSON = {"type": "message", "text": m.text, "user": m.user, "ts": m.ts, "team": self.team_id}
        if m.bot_id:
            out["bot_id"] = m.bot_id
            out["app_id"] = m.app_id
            out["bot_profile"] = {
                "id": m.bot_id,
                "app_id": m.app_id,
                "name": self.users[m.user].name if m.user in self.users else "",
                "deleted": False,
                "team_id": self.team_id,
            }
        if m.blocks is not None:
            out["blocks"] = copy.deepcopy(m.blocks)
        if m.attachments:
            out["attachments"] = copy.deepcopy(m.attachments)
        if m.files:
            out["files"] = copy.deepcopy(m.files)
            out["upload"] = True
            out["display_as_bot"] = False
        if m.metadata is not None:
            out["metadata"] = copy.deepcopy(m.metadata)
        if m.edited is not None:
            out["edited"] = dict(m.edited)
        if m.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in m.reactions.items()
            ]
        if m.thread_ts is not None:
            out["thread_ts"] = m.thread_ts
            parent = self.messages[m.channel].get(m.thread_ts) if m.is_reply else None
            if parent is not None:
                out["parent_user_id"] = parent.user
                if m.reply_broadcast:
                    out["subtype"] = "thread_broadcast"
                    out["root"] = self.message_json(parent)
        replies = self.thread(m.channel, m.ts) if m.visible_to is None and not m.is_reply else []
        if replies:
            users = list(dict.fromkeys(r.user for r in replies))
            out.update(
                thread_ts=m.ts,
                reply_count=len(replies),
                reply_users_count=len(users),
                reply_users=users,
                latest_reply=replies[-1].ts,
                is_locked=False,
                subscribed=False,
            )
        return out

    # ---- chat.* ----------------------------------------------------------------------------------

    def _checked_content(
        self, text: str | None, blocks: object, attachments: object
    ) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
        if blocks is not None:
            errors = validate_blocks(blocks, Surface.MESSAGE)
            if errors:
                raise invalid_blocks(errors)
        if attachments is not None:
            if not isinstance(attachments, list):
                raise SlackError("invalid_attachments")
            if len(attachments) > MAX_ATTACHMENTS:
                raise SlackError("too_many_attachments")
        if text is not None and len(text) > MAX_MESSAGE_TEXT:
            # Slack truncates top-level text past 40,000 characters rather than refusing it
            # (changelog 2018-04 "truncating really long messages"); msg_too_long is kept for
            # the emulator's strict mode, see SlackApi.strict_text_length.
            text = text[:MAX_MESSAGE_TEXT]
        return text, _with_ids(blocks), attachments  # type: ignore[arg-type]

    def post_message(
        self,
        caller: str,
        channel: str,
        *,
        text: str | None = None,
        blocks: object = None,
        attachments: object = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
        files: list[JSON] | None = None,
    ) -> Message:
        with self._lock:
            c = self._visible_channel(channel, caller)
            if caller not in c.members and not self._posts_unjoined(caller, c):
                raise SlackError("not_in_channel")
            if not text and not blocks and not attachments and not files:
                raise SlackError("no_text")
            text, checked_blocks, checked_attachments = self._checked_content(text, blocks, attachments)
            if thread_ts is not None:
                parent = self.messages[c.id].get(thread_ts)
                if parent is None:
                    # A deleted or never-posted parent: Slack refuses with invalid_thread_ts.
                    raise SlackError("invalid_thread_ts")
                thread_ts = parent.thread_ts or parent.ts
            caller_user = self.users[caller]
            m = Message(
                channel=c.id,
                ts=self.new_ts(),
                user=caller,
                text=text or "",
                blocks=checked_blocks,
                attachments=checked_attachments,
                thread_ts=thread_ts,
                reply_broadcast=bool(thread_ts and reply_broadcast),
                metadata=metadata,
                files=files or [],
                bot_id=caller_user.bot_id,
                app_id=caller_user.app_id,
            )
            self._store(m)
            return m

    def update_message(
        self,
        caller: str,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: object = None,
        attachments: object = None,
        metadata: JSON | None = None,
    ) -> Message:
        with self._lock:
            c = self._visible_channel(channel, caller)
            m = self.messages[c.id].get(ts)
            if m is None:
                raise SlackError("message_not_found")
            if m.user != caller:
                raise SlackError("cant_update_message")
            text, checked_blocks, checked_attachments = self._checked_content(text, blocks, attachments)
            self._replace(m, text, checked_blocks, checked_attachments, metadata, caller)
            return m

    def _replace(
        self,
        m: Message,
        text: str | None,
        blocks: list[JSON] | None,
        attachments: list[JSON] | None,
        metadata: JSON | None,
        editor: str,
    ) -> None:
        if text is not None:
            m.text = text
        if blocks is not None:
            m.blocks = blocks
        if attachments is not None:
            m.attachments = attachments
        if metadata is not None:
            m.metadata = metadata
        m.edited = {"user": editor, "ts": self.new_ts()}
        self._touch()

    def delete_message(self, caller: str, channel: str, ts: str) -> None:
        with self._lock:
            c = self._visible_channel(channel, caller)
            m = self.messages[c.id].get(ts)
            if m is None:
                raise SlackError("message_not_found")
            if m.user != caller:
                raise SlackError("cant_delete_message")
            self._drop(m)

    def post_ephemeral(
        self,
        caller: str,
        channel: str,
        user: str,
        *,
        text: str | None = None,
        blocks: object = None,
        attachments: object = None,
        thread_ts: str | None = None,
        check_caller: bool = True,
    ) -> Message:
        with self._lock:
            c = self._member_channel(channel, caller) if check_caller else self.channel(channel, caller)
            target = self.user(user)
            if target.id not in c.members:
                raise SlackError("user_not_in_channel")
            if not text and not blocks and not attachments:
                raise SlackError("no_text")
            text, checked_blocks, checked_attachments = self._checked_content(text, blocks, attachments)
            m = Message(
                channel=c.id,
                ts=self.new_ts(),
                user=caller,
                text=text or "",
                blocks=checked_blocks,
                attachments=checked_attachments,
                thread_ts=thread_ts,
                bot_id=self.users[caller].bot_id,
                app_id=self.users[caller].app_id,
                visible_to=target.id,
            )
            self.ephemeral[c.id].append(m)
            self._touch()
            return m

    def permalink(self, caller: str, channel: str, ts: str) -> str:
        with self._lock:
            c = self._visible_channel(channel, caller)
            m = self.messages[c.id].get(ts)
            if m is None:
                raise SlackError("message_not_found")
            link = f"https://{self.domain}.slack.com/archives/{c.id}/p{ts.replace('.', '')}"
            if m.is_reply:
                link += f"?thread_ts={m.thread_ts}&cid={c.id}"
            return link

    def add_reaction(self, caller: str, channel: str, ts: str, name: str) -> None:
        with self._lock:
            c = self._member_channel(channel, caller)
            m = self.messages[c.id].get(ts)
            if m is None:
                raise SlackError("message_not_found")
            name = name.strip(":")
            if not name or " " in name:
                raise SlackError("invalid_name")
            users = m.reactions.setdefault(name, [])
            if caller in users:
                raise SlackError("already_reacted")
            users.append(caller)
            self._touch()

    # ---- conversations.* ----------------------------------------------------------------------------

    def history(
        self,
        caller: str,
        channel: str,
        *,
        latest: str | None = None,
        oldest: str | None = None,
        inclusive: bool = False,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[JSON], bool, str]:
        """Newest first; thread replies only when broadcast. Returns (messages, has_more, next_cursor)."""
        with self._lock:
            c = self._member_channel(channel, caller)
            msgs = [m for m in self.messages[c.id].values() if not m.is_reply or m.reply_broadcast]
            msgs = _window(msgs, latest, oldest, inclusive)
            msgs.sort(key=lambda m: ts_key(m.ts), reverse=True)
            if cursor:
                before = ts_key(decode_cursor("next_ts", cursor))
                msgs = [m for m in msgs if ts_key(m.ts) < before]
            page = msgs[:limit]
            more = len(msgs) > limit
            nxt = encode_cursor("next_ts", page[-1].ts) if more and page else ""
            return [self.message_json(m) for m in page], more, nxt

    def replies(
        self,
        caller: str,
        channel: str,
        ts: str,
        *,
        latest: str | None = None,
        oldest: str | None = None,
        inclusive: bool = False,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> tuple[list[JSON], bool, str]:
        """The thread's parent first on every page, then replies oldest first."""
        with self._lock:
            c = self._member_channel(channel, caller)
            m = self.messages[c.id].get(ts)
            if m is None:
                raise SlackError("thread_not_found")
            parent = self.messages[c.id][m.thread_ts] if m.is_reply and m.thread_ts else m
            replies = _window(self.thread(c.id, parent.ts), latest, oldest, inclusive)
            if cursor:
                after = ts_key(decode_cursor("next_ts", cursor))
                replies = [r for r in replies if ts_key(r.ts) > after]
            page = replies[: max(limit - 1, 1)]
            more = len(replies) > len(page)
            nxt = encode_cursor("next_ts", page[-1].ts) if more and page else ""
            return [self.message_json(x) for x in (parent, *page)], more, nxt

    def conversation_members(
        self, caller: str, channel: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[str], str]:
        with self._lock:
            c = self._visible_channel(channel, caller)
            return _page(list(c.members), cursor, limit)

    # ---- users and usergroups -----------------------------------------------------------------------

    def users_page(self, *, limit: int = 200, cursor: str | None = None) -> tuple[list[JSON], str]:
        with self._lock:
            email = self.has_scope("users:read.email")
            all_users = [u.to_slack(self.team_id, with_email=email) for u in self.users.values()]
            return _page(all_users, cursor, limit)

    def usergroup(self, ref: str) -> Usergroup:
        with self._lock:
            if ref in self.usergroups:
                return self.usergroups[ref]
            for g in self.usergroups.values():
                if g.handle == ref.removeprefix("@"):
                    return g
        raise SlackError("no_such_subteam")

    def set_usergroup_members(self, ref: str, members: Iterable[str]) -> None:
        """Change a group's members (what an admin does in Slack; tests use it for cache expiry)."""
        with self._lock:
            self.usergroup(ref).members = [self.user(u).id for u in members]
            self._touch()

    def join_channel(self, caller: str, channel: str) -> tuple[Channel, bool]:
        """conversations.join: public channels only; True when the caller was already a member."""
        with self._lock:
            c = self._visible_channel(channel, caller)
            if c.is_private or c.is_im:
                raise SlackError("method_not_supported_for_channel_type")
            already = caller in c.members
            if not already:
                c.members.append(caller)
                self._touch()
            return c, already

    def join(self, channel: str, user: str) -> None:
        with self._lock:
            c = self.channel(channel)
            uid = self.user(user).id
            if uid not in c.members:
                c.members.append(uid)
                self._touch()

    def leave(self, channel: str, user: str) -> None:
        with self._lock:
            c = self.channel(channel)
            uid = self.user(user).id
            if uid in c.members:
                c.members.remove(uid)
                self._touch()

    # ---- views -----------------------------------------------------------------------------------

    def _view_json(self, v: View) -> JSON:
        p = v.payload
        return {
            "id": v.id,
            "team_id": self.team_id,
            "type": p["type"],
            "blocks": copy.deepcopy(p.get("blocks", [])),
            "private_metadata": p.get("private_metadata", ""),
            "callback_id": p.get("callback_id", ""),
            "state": copy.deepcopy(v.state),
            "hash": v.hash,
            "title": p.get("title", {"type": "plain_text", "text": "View Title"}),
            "clear_on_close": bool(p.get("clear_on_close", False)),
            "notify_on_close": bool(p.get("notify_on_close", False)),
            "close": p.get("close"),
            "submit": p.get("submit"),
            "previous_view_id": v.previous_view_id,
            "root_view_id": v.root_view_id,
            "app_id": self.app_id,
            "external_id": p.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def view(self, view_id: str) -> JSON:
        with self._lock:
            v = self.views.get(view_id)
            if v is None:
                raise SlackError("not_found")
            return self._view_json(v)

    def home_view(self, user: str) -> JSON | None:
        with self._lock:
            vid = self.home.get(self.user(user).id)
            return self._view_json(self.views[vid]) if vid else None

    def open_modals(self, user: str) -> list[JSON]:
        with self._lock:
            return [self._view_json(self.views[v]) for v in self.modals.get(self.user(user).id, [])]

    def _new_view(self, user: str, payload: JSON, previous: str | None = None) -> View:
        vid = self._id("V")
        v = View(vid, user, payload, secrets.token_hex(8), vid, previous)
        self.views[vid] = v
        return v

    @staticmethod
    def _checked_view(view: object) -> JSON:
        errors = validate_view(view)
        if errors:
            # views.* report schema problems as invalid_arguments (chat.* say invalid_blocks).
            raise SlackError(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
            )
        assert isinstance(view, dict)
        return {**view, "blocks": _with_ids(view.get("blocks"))}

    def publish_home(self, caller: str, user_id: str, view: object, view_hash: str | None = None) -> JSON:
        with self._lock:
            uid = self.user(user_id).id
            payload = self._checked_view(view)
            if payload.get("type") != "home":
                raise SlackError(
                    "invalid_arguments", response_metadata={"messages": ["view type must be home"]}
                )
            current = self.home.get(uid)
            if current is not None:
                v = self.views[current]
                if view_hash is not None and view_hash != v.hash:
                    raise SlackError("hash_conflict")
                v.payload, v.hash = payload, secrets.token_hex(8)
            else:
                v = self._new_view(uid, payload)
                self.home[uid] = v.id
            self._touch()
            return self._view_json(v)

    def open_view(self, caller: str, trigger_id: str, view: object) -> JSON:
        with self._lock:
            trigger = self.triggers.get(trigger_id)
            if trigger is None:
                raise SlackError("invalid_trigger_id")
            if trigger.used:
                raise SlackError("exchanged_trigger_id")
            if time.monotonic() - trigger.created > self.trigger_ttl:
                raise SlackError("expired_trigger_id")
            payload = self._checked_view(view)
            if payload.get("type") != "modal":
                raise SlackError("invalid_arguments")
            trigger.used = True
            return self._push_modal(trigger.user, payload)

    def push_view(self, caller: str, trigger_id: str, view: object) -> JSON:
        """views.push: a modal on top of the open one (Slack allows a stack of three)."""
        with self._lock:
            trigger = self.triggers.get(trigger_id)
            if trigger is None:
                raise SlackError("invalid_trigger_id")
            stack = self.modals.get(trigger.user, [])
            if not stack:
                raise SlackError("not_found")
            if len(stack) >= 3:
                raise SlackError("push_limit_reached")
            trigger.used = True
            return self._push_modal(trigger.user, self._checked_view(view))

    def _push_modal(self, user: str, payload: JSON) -> JSON:
        stack = self.modals.setdefault(user, [])
        v = self._new_view(user, payload, previous=stack[-1] if stack else None)
        if stack:
            v.root_view_id = self.views[stack[0]].root_view_id
        stack.append(v.id)
        self._touch()
        return self._view_json(v)

    def update_view(
        self,
        caller: str,
        view: object,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        view_hash: str | None = None,
    ) -> JSON:
        with self._lock:
            target = None
            if view_id:
                target = self.views.get(view_id)
            elif external_id:
                target = next(
                    (v for v in self.views.values() if v.payload.get("external_id") == external_id), None
                )
            if target is None:
                raise SlackError("not_found")
            if view_hash is not None and view_hash != target.hash:
                raise SlackError("hash_conflict")
            target.payload = self._checked_view(view)
            target.hash = secrets.token_hex(8)
            self._touch()
            return self._view_json(target)

    def close_view(self, user: str, view_id: str) -> None:
        with self._lock:
            stack = self.modals.get(self.user(user).id, [])
            if view_id in stack:
                stack.remove(view_id)
                self._touch()

    # ---- files (upload v2) --------------------------------------------------------------------------

    def start_upload(
        self,
        caller: str,
        filename: str | None,
        length: str | int | None,
        alt_txt: str = "",
        snippet_type: str = "",
    ) -> StoredFile:
        if not filename or length is None or not str(length).isdigit():
            raise SlackError("invalid_arguments")
        with self._lock:
            f = StoredFile(
                id=self._id("F"),
                name=filename,
                length=int(length),
                user=caller,
                created=int(time.time()),
                upload_secret=secrets.token_urlsafe(12),
                alt_txt=alt_txt,
                snippet_type=snippet_type,
            )
            self.files[f.id] = f
            return f

    def upload_url(self, f: StoredFile) -> str:
        return f"{self.base_url}/upload/v1/{f.id}/{f.upload_secret}"

    def receive_upload(self, file_id: str, secret: str, data: bytes) -> StoredFile:
        with self._lock:
            f = self.files.get(file_id)
            if f is None or not secrets.compare_digest(f.upload_secret, secret):
                raise SlackError("file_not_found", status=404)
            f.content = data
            self._touch()
            return f

    def file_json(self, f: StoredFile) -> JSON:
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title or f.name,
            "mimetype": "text/plain" if f.snippet_type else "application/octet-stream",
            "filetype": f.snippet_type or "binary",
            "user": f.user,
            "user_team": self.team_id,
            "size": len(f.content or b""),
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"{self.base_url}/files/{f.id}/{f.name}",
            "permalink": f"https://{self.domain}.slack.com/files/{f.user}/{f.id}/{f.name}",
            "alt_txt": f.alt_txt,
            "channels": list(f.channels),
        }

    def complete_upload(
        self,
        caller: str,
        files: list[JSON],
        *,
        channel_id: str | None = None,
        initial_comment: str | None = None,
        thread_ts: str | None = None,
    ) -> list[JSON]:
        with self._lock:
            stored: list[StoredFile] = []
            for item in files:
                f = self.files.get(str(item.get("id")))
                if f is None or f.user != caller:
                    raise SlackError("file_not_found")
                if f.content is None:
                    raise SlackError("file_upload_not_completed")
                f.title = str(item.get("title") or f.name)
                f.completed = True
                stored.append(f)
            if channel_id:
                c = self._member_channel(channel_id, caller)
                for f in stored:
                    f.channels.append(c.id)
                self.post_message(
                    caller,
                    c.id,
                    text=initial_comment or "",
                    thread_ts=thread_ts,
                    files=[self.file_json(f) for f in stored],
                )
            self._touch()
            return [self.file_json(f) for f in stored]

    # ---- interactions (response_url / trigger_id) ------------------------------------------------------

    def mint_trigger(self, user: str) -> str:
        with self._lock:
            tid = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
            self.triggers[tid] = Trigger(tid, self.user(user).id, time.monotonic())
            return tid

    def mint_interaction(
        self,
        kind: str,
        user: str,
        channel: str,
        *,
        message_ts: str | None = None,
        ephemeral: bool = False,
    ) -> Interaction:
        """A response_url and trigger_id for one user action, as Slack issues with every payload."""
        with self._lock:
            uid = self.user(user).id
            c = self.channel(channel, uid)
            thread_ts = None
            if message_ts is not None:
                clicked = self.message(c.id, message_ts)
                # Answers to a click inside a thread stay in that thread.
                thread_ts = clicked.thread_ts if clicked.is_reply else None
            iid = self._id("I")
            secret = secrets.token_urlsafe(18)
            it = Interaction(
                id=iid,
                secret=secret,
                kind=kind,
                user=uid,
                channel=c.id,
                message_ts=message_ts,
                ephemeral=ephemeral,
                thread_ts=thread_ts,
                created=time.monotonic(),
                response_url=f"{self.base_url}/hooks/{self.team_id}/{iid}/{secret}",
                trigger_id=self.mint_trigger(uid),
            )
            self.interactions[iid] = it
            return it

    def respond(self, interaction_id: str, secret: str, body: JSON, *, count_use: bool = True) -> None:
        """A POST to a response_url: ephemeral, in_channel, replace_original or delete_original.

        `count_use=False` is Slack showing a slash command's HTTP acknowledgement body, which
        does not spend one of the response_url's five uses.
        """
        with self._lock:
            it = self.interactions.get(interaction_id)
            if it is None or not secrets.compare_digest(it.secret, secret):
                raise SlackError("invalid_url", status=404)
            if time.monotonic() - it.created > RESPONSE_URL_TTL:
                raise SlackError("expired_url", status=404)
            if it.uses >= RESPONSE_URL_USES:
                raise SlackError("used_url", status=404)
            it.uses += 1 if count_use else 0
            bot = self.bot_user_id
            original = None
            if it.message_ts is not None:
                try:
                    original = self.message(it.channel, it.message_ts)
                except SlackError:
                    original = None
            text = body.get("text")
            blocks = body.get("blocks")
            attachments = body.get("attachments")
            if _truthy(body.get("delete_original")):
                if original is None:
                    raise SlackError("message_not_found", status=404)
                self._remove(original)
                return
            if _truthy(body.get("replace_original")) and original is not None:
                text, checked, checked_att = self._checked_content(text, blocks, attachments)
                self._replace(original, text, checked, checked_att, None, bot)
                if original.visible_to is not None:
                    original.edited = None  # Slack does not mark replaced ephemeral messages as edited
                return
            thread_ts = body.get("thread_ts") or it.thread_ts
            if body.get("response_type") == "in_channel":
                c = self.channel(it.channel, bot)
                parent = self.messages[c.id].get(thread_ts) if thread_ts else None
                thread_ts = (parent.thread_ts or parent.ts) if parent is not None else None
                if not text and not blocks and not attachments:
                    raise SlackError("no_text", status=400)
                text, checked, checked_att = self._checked_content(text, blocks, attachments)
                m = Message(
                    channel=c.id,
                    ts=self.new_ts(),
                    user=bot,
                    text=text or "",
                    blocks=checked,
                    attachments=checked_att,
                    thread_ts=thread_ts,
                    bot_id=self.bot_id,
                    app_id=self.app_id,
                )
                self._store(m)
                return
            self.post_ephemeral(
                bot,
                it.channel,
                it.user,
                text=text,
                blocks=blocks,
                attachments=attachments,
                thread_ts=thread_ts,
                check_caller=False,
            )

    def _remove(self, m: Message) -> None:
        if m.visible_to is None:
            self._drop(m)
        else:
            self.ephemeral[m.channel] = [e for e in self.ephemeral[m.channel] if e is not m]
        self._touch()

    # ---- the whole state as JSON (for the web page and for debugging) ----

    def snapshot(self) -> JSON:
        with self._lock:
            channels = []
            for c in self.channels.values():
                top = self.channel_messages(c.id)
                channels.append(
                    {
                        "channel": c.to_slack(self.bot_user_id, include_num_members=True),
                        "members": list(c.members),
                        "messages": [
                            {
                                **self.message_json(m),
                                "replies": [self.message_json(r) for r in self.thread(c.id, m.ts)],
                            }
                            for m in top
                            if not m.is_reply
                        ],
                        "ephemeral": [
                            {**self.message_json(e), "visible_to": e.visible_to} for e in self.ephemeral[c.id]
                        ],
                    }
                )
            return {
                "team": {"id": self.team_id, "name": self.team_name, "domain": self.domain},
                "bot": {"user_id": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id},
                "users": [u.to_slack(self.team_id) for u in self.users.values()],
                "usergroups": [
                    g.to_slack(self.team_id, include_users=True) for g in self.usergroups.values()
                ],
                "channels": channels,
                "views": {
                    "home": {u: self._view_json(self.views[v]) for u, v in self.home.items()},
                    "modals": {
                        u: [self._view_json(self.views[v]) for v in vs] for u, vs in self.modals.items()
                    },
                },
                "files": [self.file_json(f) for f in self.files.values() if f.completed],
                "version": self.version,
            }


def _with_ids(blocks: list[JSON] | None) -> list[JSON] | None:
    """Slack stores every block with a block_id and every interactive element with an action_id,
    inventing short random ones where the app gave none; apps then see those in payloads."""
    if blocks is None:
        return None
    out = copy.deepcopy(blocks)
    _text_defaults(out)
    for block in out:
        block.setdefault("block_id", secrets.token_urlsafe(4)[:5])
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        if isinstance(block.get("element"), dict):
            elements.append(block["element"])
        for el in elements:
            if isinstance(el, dict) and el.get("type") not in ("image", None):
                el.setdefault("action_id", secrets.token_urlsafe(4)[:5])
    return out


def _text_defaults(node: object) -> None:
    """Slack stores text objects with their defaults spelled out (emoji on plain_text, verbatim on
    mrkdwn); payloads and history show them that way."""
    if isinstance(node, dict):
        if node.get("type") == "plain_text":
            node.setdefault("emoji", True)
        elif node.get("type") == "mrkdwn":
            node.setdefault("verbatim", False)
        for value in node.values():
            _text_defaults(value)
    elif isinstance(node, list):
        for item in node:
            _text_defaults(item)


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _window(msgs: list[Message], latest: str | None, oldest: str | None, inclusive: bool) -> list[Message]:
    hi = ts_key(latest) if latest else None
    lo = ts_key(oldest) if oldest else None
    out = []
    for m in msgs:
        k = ts_key(m.ts)
        if hi is not None and (k > hi or (k == hi and not inclusive)):
            continue
        if lo is not None and (k < lo or (k == lo and not inclusive)):
            continue
        out.append(m)
    return out
