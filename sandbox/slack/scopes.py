"""Which OAuth scope each Web API method needs, so the sandbox can hold the bot to its manifest.

With `SeedBot.scopes` set, a call without its scope is refused as Slack refuses it
(`missing_scope` with `needed` and `provided`); either way the emulator records every scope the bot
actually needed (`SlackEmulator.scopes_used`), so a test can prove manifest.yaml asks for exactly
those. Scope names from each method's reference page; conversation methods need the scope of the
conversation's type (channels:/groups:/im:/mpim:).
"""

from __future__ import annotations

from sandbox.slack.workspace import Channel

# Methods whose scope does not depend on the conversation; None: no scope needed.
FIXED: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.getPermalink": None,
    "users.info": "users:read",
    "users.list": "users:read",
    "usergroups.users.list": "usergroups:read",
    "usergroups.list": "usergroups:read",
    "reactions.add": "reactions:write",
    "views.publish": None,
    "views.open": None,
    "views.update": None,
    "views.push": None,
    "conversations.join": "channels:join",
    "conversations.open": "im:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
}
# Methods whose scope is "<conversation type>:<suffix>".
BY_CONVERSATION = {
    "conversations.history": "history",
    "conversations.replies": "history",
    "conversations.info": "read",
    "conversations.members": "read",
}


def conversation_kind(channel: Channel | None) -> str:
    if channel is None or not (channel.is_im or channel.is_private):
        return "channels"
    return "im" if channel.is_im else "groups"


def needed_scope(method: str, channel: Channel | None) -> str | None:
    if method in BY_CONVERSATION:
        return f"{conversation_kind(channel)}:{BY_CONVERSATION[method]}"
    return FIXED.get(method)
