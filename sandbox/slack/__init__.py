"""Slack, emulated: the Web API the bot calls, the people who click its buttons, and a transcript.

with SlackEmulator(demo_seed()) as slack:
    bot = WebClient(token=slack.bot_token, base_url=slack.api_url)
    people = SlackActors(slack.workspace, "http://127.0.0.1:3000/slack/events")
    people["alice"].command("/migrate", "status", channel="eks-migration")
    print(transcript(slack.workspace, "eks-migration"))
"""

from sandbox.slack.actors import (
    Delivery,
    SlackActors,
    SlackRequest,
    SlackUser,
    find_element,
    send,
    send_async,
)
from sandbox.slack.api import CallRecord, SlackApi
from sandbox.slack.blockkit import Surface, validate_blocks, validate_view
from sandbox.slack.errors import SlackError
from sandbox.slack.faults import FaultKind, FaultRule
from sandbox.slack.seed import SeedBot, SeedChannel, SeedUser, SeedUsergroup, WorkspaceSeed, demo_seed
from sandbox.slack.server import SlackEmulator
from sandbox.slack.signing import signature, signed_headers
from sandbox.slack.transcript import render_blocks, transcript
from sandbox.slack.workspace import Message, Workspace

__all__ = [
    "CallRecord",
    "Delivery",
    "FaultKind",
    "FaultRule",
    "Message",
    "SeedBot",
    "SeedChannel",
    "SeedUser",
    "SeedUsergroup",
    "SlackActors",
    "SlackApi",
    "SlackEmulator",
    "SlackError",
    "SlackRequest",
    "SlackUser",
    "Surface",
    "Workspace",
    "WorkspaceSeed",
    "demo_seed",
    "find_element",
    "render_blocks",
    "send",
    "send_async",
    "signature",
    "signed_headers",
    "transcript",
    "validate_blocks",
    "validate_view",
]
