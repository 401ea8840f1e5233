"""What an emulated Slack workspace starts with: plain typed input, no Slack objects yet.

The store (workspace.py) turns this into Slack-shaped users, usergroups and channels. Keeping the
seed apart lets a scenario file, a test and the demo describe a workspace in a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SeedUser:
    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    email: str = ""
    tz: str = "UTC"
    is_admin: bool = False


@dataclass(frozen=True)
class SeedUsergroup:
    id: str
    handle: str
    name: str = ""
    members: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class SeedChannel:
    id: str
    name: str
    members: tuple[str, ...] = ()
    is_private: bool = False
    topic: str = ""
    purpose: str = ""


@dataclass(frozen=True)
class SeedBot:
    """The app under test: its bot user, its tokens and the secrets Slack would hold for it."""

    user_id: str = "UBOT00001"
    name: str = "migratebot"
    real_name: str = "migratebot"
    bot_id: str = "BBOT00001"
    app_id: str = "AAPP00001"
    tokens: tuple[str, ...] = ("xoxb-sandbox-bot-token",)
    signing_secret: str = "sandbox-signing-secret"
    # The legacy verification token Slack still puts in every payload's `token` field.
    verification_token: str = "sandbox-verification-token"
    # The bot token's OAuth scopes. None grants every method (most tests); a tuple makes the
    # emulator refuse what the manifest does not ask for (missing_scope), as Slack would.
    scopes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WorkspaceSeed:
    team_id: str = "T0SANDBOX"
    team_name: str = "Sandbox"
    domain: str = "sandbox"
    bot: SeedBot = field(default_factory=SeedBot)
    users: tuple[SeedUser, ...] = ()
    usergroups: tuple[SeedUsergroup, ...] = ()
    channels: tuple[SeedChannel, ...] = ()
    # None: message ts follow the wall clock (latest/oldest filters behave as on Slack).
    # A number: ts start there and step by 100 µs, so transcripts and dumps are reproducible.
    start_ts: float | None = None


def demo_seed(*, bot: SeedBot | None = None, start_ts: float | None = None) -> WorkspaceSeed:
    """The migration team the demo and the tests talk about: SREs, team leads, on-call, a stranger."""
    users = (
        SeedUser("U0ALICE01", "alice", "Alice Sre", email="alice@example.com"),
        SeedUser("U0BOB0001", "bob", "Bob Sre", email="bob@example.com"),
        SeedUser("U0CAROL01", "carol", "Carol Lead", email="carol@example.com"),
        SeedUser("U0DAVE001", "dave", "Dave Lead", email="dave@example.com"),
        SeedUser("U0ERIN001", "erin", "Erin Oncall", email="erin@example.com"),
        SeedUser("U0MALLORY", "mallory", "Mallory Outsider", email="mallory@example.com"),
    )
    everyone = tuple(u.id for u in users)
    the_bot = bot or SeedBot()
    return WorkspaceSeed(
        bot=the_bot,
        users=users,
        usergroups=(
            SeedUsergroup("S0SRE0001", "sre", "SRE", ("U0ALICE01", "U0BOB0001")),
            SeedUsergroup("S0LEADS01", "team-leads", "Team leads", ("U0CAROL01", "U0DAVE001")),
            SeedUsergroup("S0ONCALL1", "oncall", "On-call", ("U0ERIN001",)),
        ),
        channels=(
            SeedChannel(
                "C0MIGRATE",
                "eks-migration",
                (*everyone, the_bot.user_id),
                purpose="AL2 → Bottlerocket, wave by wave",
            ),
            SeedChannel("C0ALERTS1", "eks-alerts", ("U0ERIN001", "U0ALICE01", the_bot.user_id)),
            SeedChannel("C0RANDOM1", "random", everyone),
        ),
        start_ts=start_ts,
    )
