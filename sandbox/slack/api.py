"""Slack's Web API over HTTP (Starlette), answering the real slack_sdk and slack_bolt clients.

Requests arrive as Slack accepts them: form-encoded or multipart bodies, query strings, or JSON
bodies (which, as on Slack, must carry the token in `Authorization: Bearer`). Answers have Slack's
shapes: `ok`, `error`, `warning` + `response_metadata.warnings`, cursors in
`response_metadata.next_cursor`. Besides /api/{method} the app serves the URLs Slack hands out:
file upload URLs (/upload/v1/...) and response_urls (/hooks/...), plus /admin for ground truth and
fault injection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandbox.slack.actors import SlackActors, SlackUser
from sandbox.slack.blockkit import MAX_MESSAGE_TEXT
from sandbox.slack.errors import SlackError
from sandbox.slack.faults import FaultKind, FaultPlan, FaultRule
from sandbox.slack.limits import RateLimiter
from sandbox.slack.scopes import needed_scope
from sandbox.slack.transcript import transcript
from sandbox.slack.ui import SlackUi
from sandbox.slack.workspace import JSON, Workspace


@dataclass(frozen=True)
class CallRecord:
    """One Web API call as the emulator saw it: what tests assert on ("the bot called X twice")."""

    method: str
    params: JSON
    status: int
    ok: bool
    error: str
    at: float


@dataclass
class Call:
    method: str
    caller: str
    params: JSON

    def opt(self, key: str) -> str | None:
        v = self.params.get(key)
        return None if v is None else str(v)

    def required(self, key: str) -> str:
        v = self.opt(key)
        if not v:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {key}"]},
            )
        return v

    def flag(self, key: str) -> bool:
        v = self.params.get(key)
        return v is True or (isinstance(v, str) and v.lower() in ("1", "true"))

    def number(self, key: str, default: int, *, low: int = 1, high: int = 1000) -> int:
        v = self.params.get(key)
        if v in (None, "", 0, "0"):
            return default
        try:
            return max(low, min(high, int(str(v))))
        except ValueError as e:
            raise SlackError("invalid_arguments") from e

    def parsed(self, key: str) -> Any:
        v = self.params.get(key)
        if isinstance(v, str):
            try:
                return json.loads(v)
            except ValueError as e:
                name = "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
                raise SlackError(name) from e
        return v


class SlackApi:
    """The ASGI app (`.app`) over one `Workspace`, with fault injection and a call log."""

    def __init__(self, workspace: Workspace, *, admin_token: str | None = None, fault_seed: int = 0) -> None:
        self.workspace = workspace
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.faults = FaultPlan(fault_seed)
        self.limits = RateLimiter()
        self.scopes_used: set[str] = set()
        self.calls: collections.deque[CallRecord] = collections.deque(maxlen=20_000)
        # Slack documents truncation past 40,000 characters; strict mode refuses instead, for tests
        # that want to prove the bot never relies on truncation.
        self.strict_text_length = False
        # The app's Request URL, as configured in Slack's app settings: where /admin/act sends
        # the people's signed requests.
        self.request_url: str | None = None
        # The interactive page (ui.py), off unless asked for: it acts as anyone without a token.
        self.ui = SlackUi(workspace, lambda: self.request_url)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/upload/v1/{file_id}/{secret}", self._upload, methods=["POST", "PUT"]),
                Route("/hooks/{team}/{iid}/{secret}", self._hook, methods=["POST"]),
                Route("/files/{file_id}/{name}", self._download, methods=["GET"]),
                Route("/admin/state", self._admin_state, methods=["GET"]),
                Route("/admin/calls", self._admin_calls, methods=["GET"]),
                Route("/admin/transcript/{channel}", self._admin_transcript, methods=["GET"]),
                Route("/admin/faults", self._admin_faults, methods=["GET", "POST", "DELETE"]),
                Route("/admin/app", self._admin_app, methods=["GET", "PUT"]),
                Route("/admin/act", self._admin_act, methods=["POST"]),
                *self.ui.routes(),
            ]
        )

    # ---- /api/{method} ---------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            params, token, warnings = await _read_params(request)
        except SlackError as e:
            return self._answer(method, {}, e.body(), e.status)
        fault = self.faults.decide(method)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is not None:
            retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return self._answer(method, params, {"ok": False, "error": fault.error}, fault.status, retry)
        retry_after = self.limits.check(method, _channel_param(params))
        if retry_after is not None:
            limited = {"Retry-After": str(retry_after)}
            return self._answer(method, params, {"ok": False, "error": "ratelimited"}, 429, limited)
        handler = METHODS.get(method)
        if handler is None:
            return self._answer(method, params, {"ok": False, "error": "unknown_method"}, 200)
        headers: dict[str, str] = {}
        try:
            caller = self.workspace.authenticate(token)
            headers, refusal = self._check_scope(method, params)
            if refusal is not None:
                raise refusal
            # One lock around the whole method: its answer is a consistent view even while a
            # test thread or an actor changes the workspace.
            with self.workspace.lock:
                body = handler(self, Call(method, caller, params))
        except SlackError as e:
            return self._answer(method, params, e.body(), e.status, headers)
        if warnings:
            body["warning"] = ",".join(warnings)
            body.setdefault("response_metadata", {})["warnings"] = warnings
        return self._answer(method, params, body, 200, headers)

    def _check_scope(self, method: str, params: JSON) -> tuple[dict[str, str], SlackError | None]:
        """Record the scope this call needs; refuse it when the bot's scopes are fixed and lack it.

        Slack tells every caller, refused or not, what it holds and what the method accepts.
        """
        ref = _channel_param(params)
        channel = None
        if ref:
            with contextlib.suppress(SlackError):
                channel = self.workspace.channel(ref)
        needed = needed_scope(method, channel)
        granted = self.workspace.seed.bot.scopes
        headers = {"x-oauth-scopes": ",".join(granted or ()), "x-accepted-oauth-scopes": needed or ""}
        if needed is None:
            return headers, None
        self.scopes_used.add(needed)
        if granted is not None and needed not in granted:
            return headers, SlackError("missing_scope", needed=needed, provided=",".join(granted))
        return headers, None

    def _answer(
        self, method: str, params: JSON, body: JSON, status: int, headers: dict[str, str] | None = None
    ) -> Response:
        # Uploaded bytes are recorded by size: the log stays JSON for /admin/calls.
        logged = {k: f"<{len(v)} bytes>" if isinstance(v, bytes) else v for k, v in params.items()}
        self.calls.append(
            CallRecord(method, logged, status, bool(body.get("ok")), str(body.get("error", "")), time.time())
        )
        return JSONResponse(body, status_code=status, headers=headers)

    def check_text(self, text: str | None) -> None:
        if self.strict_text_length and text is not None and len(text) > MAX_MESSAGE_TEXT:
            raise SlackError("msg_too_long")

    # ---- URLs Slack hands out ------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        faulted = await self._url_fault("upload")
        if faulted is not None:
            return faulted
        data = await request.body()
        try:
            f = self.workspace.receive_upload(
                request.path_params["file_id"], request.path_params["secret"], data
            )
        except SlackError as e:
            return PlainTextResponse(e.error, status_code=e.status)
        # What files.slack.com answers to a successful upload.
        return PlainTextResponse(f"OK - {len(f.content or b'')}")

    async def _url_fault(self, name: str) -> Response | None:
        """Faults for the URLs Slack hands out, named "response_url" and "upload" in fault rules."""
        fault = self.faults.decide(name)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return None
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return JSONResponse({"ok": False, "error": fault.error}, status_code=fault.status, headers=headers)

    async def _hook(self, request: Request) -> Response:
        faulted = await self._url_fault("response_url")
        if faulted is not None:
            return faulted
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        try:
            self.check_text(body.get("text"))
            self.workspace.respond(request.path_params["iid"], request.path_params["secret"], body)
        except SlackError as e:
            status = e.status if e.status != 200 else 400
            return JSONResponse(e.body(), status_code=status)
        return JSONResponse({"ok": True})

    async def _download(self, request: Request) -> Response:
        _, token, _ = await _read_params(request)
        try:
            self.workspace.authenticate(token)
        except SlackError as e:
            return PlainTextResponse(e.error, status_code=403)
        f = self.workspace.files.get(request.path_params["file_id"])
        if f is None or f.content is None:
            return PlainTextResponse("file_not_found", status_code=404)
        return Response(f.content, media_type="application/octet-stream")

    # ---- /admin ----------------------------------------------------------------------------------

    def _admin_ok(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return secrets.compare_digest(auth, f"Bearer {self.admin_token}")

    async def _admin_state(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return JSONResponse({"ok": False, "error": "invalid_auth"}, status_code=401)
        return JSONResponse(self.workspace.snapshot())

    async def _admin_calls(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return JSONResponse({"ok": False, "error": "invalid_auth"}, status_code=401)
        return JSONResponse({"calls": [asdict(c) for c in self.calls]})

    async def _admin_transcript(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return PlainTextResponse("invalid_auth", status_code=401)
        try:
            return PlainTextResponse(transcript(self.workspace, request.path_params["channel"]))
        except SlackError as e:
            return PlainTextResponse(e.error, status_code=404)

    async def _admin_app(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return JSONResponse({"ok": False, "error": "invalid_auth"}, status_code=401)
        if request.method == "PUT":
            try:
                spec = json.loads(await request.body())
                self.request_url = str(spec["request_url"])
            except (KeyError, ValueError, TypeError):
                return JSONResponse({"ok": False, "error": "invalid_arguments"}, status_code=400)
        return JSONResponse({"ok": True, "request_url": self.request_url})

    async def _admin_act(self, request: Request) -> Response:
        """A person acts, from outside the process: the emulator sends the signed request itself.

        Body: {"as": "alice", "do": "command"|"click"|"submit_view"|"open_home"|"say", ...}; the
        same arguments as the SlackUser methods. For a sandbox in another process (the CLI) and the
        interactive page, whose buttons must take the same signed path as real Slack.
        """
        if not self._admin_ok(request):
            return JSONResponse({"ok": False, "error": "invalid_auth"}, status_code=401)
        try:
            spec = json.loads(await request.body())
            if not isinstance(spec, dict):
                raise TypeError("a JSON object is required")
            url = str(spec.get("request_url") or self.request_url or "")
            if not url and spec.get("do") != "say":
                raise ValueError("no request_url: PUT /admin/app {request_url} first")
            person = SlackActors(self.workspace, url)[str(spec["as"])]
            result = await asyncio.to_thread(_act, person, spec)
        except SlackError as e:
            return JSONResponse(e.body(), status_code=400)
        except (KeyError, ValueError, TypeError, LookupError) as e:
            return JSONResponse(
                {"ok": False, "error": "invalid_arguments", "detail": str(e)}, status_code=400
            )
        return JSONResponse({"ok": True, **result})

    async def _admin_faults(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return JSONResponse({"ok": False, "error": "invalid_auth"}, status_code=401)
        if request.method == "DELETE":
            self.faults.clear()
        elif request.method == "POST":
            try:
                spec = json.loads(await request.body())
                rule = FaultRule(
                    kind=FaultKind(spec["kind"]),
                    method=str(spec.get("method", "*")),
                    times=None if spec.get("times", 1) is None else int(spec.get("times", 1)),
                    fraction=float(spec.get("fraction", 1.0)),
                    retry_after=int(spec.get("retry_after", 1)),
                    status=int(spec.get("status", 500)),
                    seconds=float(spec.get("seconds", 0.0)),
                )
            except (KeyError, ValueError, TypeError) as e:
                return JSONResponse(
                    {"ok": False, "error": "invalid_arguments", "detail": str(e)}, status_code=400
                )
            self.faults.add(rule)
        return JSONResponse({"ok": True, "faults": [r.to_json() for r in self.faults.rules()]})


async def _read_params(request: Request) -> tuple[JSON, str | None, list[str]]:
    """Query string + form/multipart/JSON body, the token, and Slack's warnings about the request."""
    params: JSON = dict(request.query_params)
    warnings: list[str] = []
    content_type = request.headers.get("content-type", "")
    body_token: str | None = None
    if request.method == "POST":
        if content_type.startswith("application/json"):
            if "charset" not in content_type:
                warnings.append("missing_charset")
            raw = await request.body()
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise SlackError("invalid_json")
            else:
                # Slack ignores a token inside a JSON body: JSON callers authenticate by header.
                data.pop("token", None)
                params.update(data)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = (await request.body()).decode("utf-8", "replace")
            params.update(urllib.parse.parse_qsl(form, keep_blank_values=True))
        elif content_type.startswith("multipart/form-data"):
            params.update(_multipart(content_type, await request.body()))
        token_param = params.get("token")
        body_token = token_param if isinstance(token_param, str) else None
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    if token is None:
        token = body_token or request.query_params.get("token")
    params.pop("token", None)
    return params, token, warnings


def _act(person: SlackUser, spec: JSON) -> JSON:
    action = spec["do"]
    if action == "say":
        return {"ts": person.say(str(spec["channel"]), str(spec["text"]), thread_ts=spec.get("thread_ts"))}
    if action == "command":
        d = person.command(str(spec["command"]), str(spec.get("text", "")), channel=str(spec["channel"]))
    elif action == "click":
        if spec.get("view_id"):
            d = person.click_in_view(str(spec["view_id"]), str(spec["action_id"]), spec.get("value"))
        else:
            d = person.click(
                channel=str(spec["channel"]),
                ts=str(spec["ts"]),
                action_id=str(spec["action_id"]),
                value=spec.get("value"),
            )
    elif action == "submit_view":
        d = person.submit_view(str(spec["view_id"]), spec.get("values"))
    elif action == "open_home":
        d = person.open_home()
    else:
        raise ValueError(f"unknown action {action!r}: command, click, submit_view, open_home or say")
    return {
        "status": d.status,
        "body": d.text,
        "elapsed": d.elapsed,
        "response_url": d.response_url,
        "trigger_id": d.trigger_id,
    }


def _channel_param(params: JSON) -> str | None:
    value = params.get("channel")
    return value if isinstance(value, str) else None


def _multipart(content_type: str, body: bytes) -> JSON:
    """multipart/form-data with the standard library (slack_sdk uses it for legacy file uploads)."""
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    out: JSON = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        out[name] = data if part.get_filename() else data.decode("utf-8", "replace")
    return out


# ---- the methods ---------------------------------------------------------------------------------


def _auth_test(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    user = ws.users[call.caller]
    return {
        "ok": True,
        "url": f"https://{ws.domain}.slack.com/",
        "team": ws.team_name,
        "user": user.name,
        "team_id": ws.team_id,
        "user_id": user.id,
        "bot_id": user.bot_id or None,
        "is_enterprise_install": False,
    }


def _post_message(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    api.check_text(call.opt("text"))
    m = ws.post_message(
        call.caller,
        call.required("channel"),
        text=call.opt("text"),
        blocks=call.parsed("blocks"),
        attachments=call.parsed("attachments"),
        thread_ts=call.opt("thread_ts") or None,
        reply_broadcast=call.flag("reply_broadcast"),
        metadata=call.parsed("metadata"),
    )
    return {"ok": True, "channel": m.channel, "ts": m.ts, "message": ws.message_json(m)}


def _update(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    api.check_text(call.opt("text"))
    m = ws.update_message(
        call.caller,
        call.required("channel"),
        call.required("ts"),
        text=call.opt("text"),
        blocks=call.parsed("blocks"),
        attachments=call.parsed("attachments"),
        metadata=call.parsed("metadata"),
    )
    message = {k: v for k, v in ws.message_json(m).items() if k not in ("ts", "type", "team")}
    return {"ok": True, "channel": m.channel, "ts": m.ts, "text": m.text, "message": message}


def _delete(api: SlackApi, call: Call) -> JSON:
    channel = api.workspace.channel(call.required("channel"), call.caller).id
    api.workspace.delete_message(call.caller, channel, call.required("ts"))
    return {"ok": True, "channel": channel, "ts": call.opt("ts")}


def _post_ephemeral(api: SlackApi, call: Call) -> JSON:
    api.check_text(call.opt("text"))
    m = api.workspace.post_ephemeral(
        call.caller,
        call.required("channel"),
        call.required("user"),
        text=call.opt("text"),
        blocks=call.parsed("blocks"),
        attachments=call.parsed("attachments"),
        thread_ts=call.opt("thread_ts") or None,
    )
    return {"ok": True, "message_ts": m.ts}


def _permalink(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    channel = ws.channel(call.required("channel"), call.caller).id
    return {
        "ok": True,
        "channel": channel,
        "permalink": ws.permalink(call.caller, channel, call.required("message_ts")),
    }


def _history(api: SlackApi, call: Call) -> JSON:
    messages, more, nxt = api.workspace.history(
        call.caller,
        call.required("channel"),
        latest=call.opt("latest") or None,
        oldest=call.opt("oldest") or None,
        inclusive=call.flag("inclusive"),
        limit=call.number("limit", 100, high=999),
        cursor=call.opt("cursor") or None,
    )
    return {
        "ok": True,
        "messages": messages,
        "has_more": more,
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
        "response_metadata": {"next_cursor": nxt},
    }


def _replies(api: SlackApi, call: Call) -> JSON:
    messages, more, nxt = api.workspace.replies(
        call.caller,
        call.required("channel"),
        call.required("ts"),
        latest=call.opt("latest") or None,
        oldest=call.opt("oldest") or None,
        inclusive=call.flag("inclusive"),
        limit=call.number("limit", 1000, high=1000),
        cursor=call.opt("cursor") or None,
    )
    return {"ok": True, "messages": messages, "has_more": more, "response_metadata": {"next_cursor": nxt}}


def _conversations_info(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    c = ws.channel(call.required("channel"), call.caller)
    if c.is_private and call.caller not in c.members:
        raise SlackError("channel_not_found")
    return {
        "ok": True,
        "channel": c.to_slack(call.caller, include_num_members=call.flag("include_num_members")),
    }


def _conversations_members(api: SlackApi, call: Call) -> JSON:
    members, nxt = api.workspace.conversation_members(
        call.caller,
        call.required("channel"),
        limit=call.number("limit", 100),
        cursor=call.opt("cursor") or None,
    )
    return {"ok": True, "members": members, "response_metadata": {"next_cursor": nxt}}


def _conversations_join(api: SlackApi, call: Call) -> JSON:
    c, already = api.workspace.join_channel(call.caller, call.required("channel"))
    out: JSON = {"ok": True, "channel": c.to_slack(call.caller)}
    if already:
        out["warning"] = "already_in_channel"
        out["response_metadata"] = {"warnings": ["already_in_channel"]}
    return out


def _conversations_open(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    if call.opt("channel"):
        c = ws.channel(call.required("channel"), call.caller)
    else:
        users = [u for u in (call.opt("users") or "").split(",") if u]
        if len(users) != 1:
            # Group DMs (mpim) are not emulated: migratebot only ever writes to one person.
            raise SlackError("not_enough_users" if not users else "too_many_users")
        c = ws.channel(ws.user(users[0]).id, call.caller)
    info = c.to_slack(call.caller) if call.flag("return_im") else {"id": c.id}
    return {"ok": True, "channel": info}


def _users_info(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    user = ws.users.get(call.required("user"))
    if user is None:
        raise SlackError("user_not_found")
    return {"ok": True, "user": user.to_slack(ws.team_id, with_email=ws.has_scope("users:read.email"))}


def _users_list(api: SlackApi, call: Call) -> JSON:
    members, nxt = api.workspace.users_page(
        limit=call.number("limit", 200), cursor=call.opt("cursor") or None
    )
    return {
        "ok": True,
        "members": members,
        "cache_ts": int(time.time()),
        "response_metadata": {"next_cursor": nxt},
    }


def _usergroups_users_list(api: SlackApi, call: Call) -> JSON:
    group = api.workspace.usergroups.get(call.required("usergroup"))
    if group is None:
        raise SlackError("no_such_subteam")
    return {"ok": True, "users": list(group.members)}


def _usergroups_list(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    include = call.flag("include_users")
    return {
        "ok": True,
        "usergroups": [g.to_slack(ws.team_id, include_users=include) for g in ws.usergroups.values()],
    }


def _reactions_add(api: SlackApi, call: Call) -> JSON:
    api.workspace.add_reaction(
        call.caller, call.required("channel"), call.required("timestamp"), call.required("name")
    )
    return {"ok": True}


def _views_publish(api: SlackApi, call: Call) -> JSON:
    view = api.workspace.publish_home(
        call.caller, call.required("user_id"), call.parsed("view"), call.opt("hash")
    )
    return {"ok": True, "view": view}


def _views_open(api: SlackApi, call: Call) -> JSON:
    return {
        "ok": True,
        "view": api.workspace.open_view(call.caller, call.required("trigger_id"), call.parsed("view")),
    }


def _views_push(api: SlackApi, call: Call) -> JSON:
    return {
        "ok": True,
        "view": api.workspace.push_view(call.caller, call.required("trigger_id"), call.parsed("view")),
    }


def _views_update(api: SlackApi, call: Call) -> JSON:
    view = api.workspace.update_view(
        call.caller,
        call.parsed("view"),
        view_id=call.opt("view_id"),
        external_id=call.opt("external_id"),
        view_hash=call.opt("hash"),
    )
    return {"ok": True, "view": view}


def _files_get_upload_url(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    f = ws.start_upload(
        call.caller,
        call.opt("filename"),
        call.opt("length"),
        call.opt("alt_txt") or "",
        call.opt("snippet_type") or "",
    )
    return {"ok": True, "upload_url": ws.upload_url(f), "file_id": f.id}


def _files_complete(api: SlackApi, call: Call) -> JSON:
    files = call.parsed("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, dict) for f in files):
        raise SlackError("invalid_arguments")
    channel = call.opt("channel_id") or (call.opt("channels") or "").split(",")[0] or None
    out = api.workspace.complete_upload(
        call.caller,
        files,
        channel_id=channel,
        initial_comment=call.opt("initial_comment"),
        thread_ts=call.opt("thread_ts") or None,
    )
    return {"ok": True, "files": out}


def _files_info(api: SlackApi, call: Call) -> JSON:
    ws = api.workspace
    f = ws.files.get(call.required("file"))
    if f is None or not f.completed:
        raise SlackError("file_not_found")
    return {"ok": True, "file": ws.file_json(f), "comments": [], "response_metadata": {"next_cursor": ""}}


METHODS: dict[str, Callable[[SlackApi, Call], JSON]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.delete": _delete,
    "chat.postEphemeral": _post_ephemeral,
    "chat.getPermalink": _permalink,
    "conversations.history": _history,
    "conversations.replies": _replies,
    "conversations.info": _conversations_info,
    "conversations.members": _conversations_members,
    "conversations.join": _conversations_join,
    "conversations.open": _conversations_open,
    "users.info": _users_info,
    "users.list": _users_list,
    "usergroups.users.list": _usergroups_users_list,
    "usergroups.list": _usergroups_list,
    "reactions.add": _reactions_add,
    "views.publish": _views_publish,
    "views.open": _views_open,
    "views.update": _views_update,
    "views.push": _views_push,
    "files.getUploadURLExternal": _files_get_upload_url,
    "files.completeUploadExternal": _files_complete,
    "files.info": _files_info,
}
