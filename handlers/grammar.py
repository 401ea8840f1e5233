"""The `/migrate` grammar: a pure parser from the text people type to a typed Command.

    /migrate help | status | plan | preview [wave] | next-wave | pause | resume | abort
             | rollback [wave] | readiness [wave] | security [wave] | canary [status|run] | audit [N]
    each with --cluster NAME (or --cluster=NAME) anywhere after the verb.

`parse` never raises: anything it can't read becomes a UsageError whose message is the ephemeral
help shown to the person who typed it. Nothing here does I/O or knows about Slack.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Verb(enum.StrEnum):
    HELP = "help"
    STATUS = "status"
    PLAN = "plan"
    PREVIEW = "preview"
    NEXT_WAVE = "next-wave"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    ROLLBACK = "rollback"
    READINESS = "readiness"
    SECURITY = "security"
    CANARY = "canary"
    AUDIT = "audit"


class CanaryAction(enum.StrEnum):
    STATUS = "status"
    RUN = "run"


AUDIT_DEFAULT = 10
AUDIT_MAX = 50
# A wave is named by its number (1-based) or its name in the plan.
_WAVE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_CLUSTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CLUSTER_FLAG = "--cluster"

# What each verb takes after it, for the help text and for the parser.
_ARGS: dict[Verb, str] = {
    Verb.HELP: "",
    Verb.STATUS: "",
    Verb.PLAN: "",
    Verb.PREVIEW: "[wave]",
    Verb.NEXT_WAVE: "",
    Verb.PAUSE: "",
    Verb.RESUME: "",
    Verb.ABORT: "",
    Verb.ROLLBACK: "[wave]",
    Verb.READINESS: "[wave]",
    Verb.SECURITY: "[wave]",
    Verb.CANARY: "[status|run]",
    Verb.AUDIT: f"[N, 1–{AUDIT_MAX}]",
}
_WHAT: dict[Verb, str] = {
    Verb.HELP: "this help",
    Verb.STATUS: "each wave and its state",
    Verb.PLAN: "the plan in a few lines, with its hash",
    Verb.PREVIEW: "what a wave would move",
    Verb.NEXT_WAVE: "request the next wave (SRE); a team lead approves it",
    Verb.PAUSE: "pause the running wave (SRE, on-call)",
    Verb.RESUME: "resume a paused wave (SRE, on-call)",
    Verb.ABORT: "abort the requested or running wave (SRE, team lead)",
    Verb.ROLLBACK: "roll a wave back (team lead)",
    Verb.READINESS: "a wave's readiness report (by number or name; default: the wave in flight or next)",
    Verb.SECURITY: "a wave's AL2 vs Bottlerocket security summary (wave as for readiness)",
    Verb.CANARY: "the canary checks: their status, or run them now",
    Verb.AUDIT: f"the last N audit events (default {AUDIT_DEFAULT})",
}


@dataclass(frozen=True)
class Command:
    verb: Verb
    cluster: str | None = None
    wave: str | None = None
    canary: CanaryAction | None = None
    limit: int | None = None


@dataclass(frozen=True)
class UsageError:
    """What was wrong, followed by the usage: shown only to the person who typed the command."""

    problem: str

    @property
    def message(self) -> str:
        return f"{self.problem}\n\n{usage()}"


def usage() -> str:
    lines = ["*Usage:* `/migrate <command> [--cluster NAME]`"]
    for verb in Verb:
        args = f" {_ARGS[verb]}" if _ARGS[verb] else ""
        lines.append(f"• `{verb.value}{args}` — {_WHAT[verb]}")
    return "\n".join(lines)


def parse(text: str) -> Command | UsageError:
    """The command `text` asks for, or a UsageError saying what is wrong. Never raises."""
    tokens = text.split()
    if not tokens:
        return Command(Verb.HELP)
    word = tokens[0].lower()
    try:
        verb = Verb(word)
    except ValueError:
        return UsageError(f"`{_shown(tokens[0])}` is not a /migrate command.")
    cluster: str | None = None
    rest: list[str] = []
    index = 1
    while index < len(tokens):
        token = tokens[index]
        if token == _CLUSTER_FLAG or token.startswith(_CLUSTER_FLAG + "="):
            if cluster is not None:
                return UsageError("`--cluster` is given twice: name one cluster.")
            if token == _CLUSTER_FLAG:
                if index + 1 >= len(tokens):
                    return UsageError("`--cluster` needs a cluster name: `--cluster prod-us-west-2`.")
                value = tokens[index + 1]
                index += 2
            else:
                value = token.split("=", 1)[1]
                index += 1
            if not _CLUSTER.fullmatch(value):
                return UsageError(f"`{_shown(value)}` is not a cluster name.")
            cluster = value
            continue
        if token.startswith("--"):
            return UsageError(
                f"`{_shown(token)}` is not an option of /migrate; the only one is `--cluster NAME`."
            )
        rest.append(token)
        index += 1
    return _arguments(verb, rest, cluster)


def _arguments(verb: Verb, rest: list[str], cluster: str | None) -> Command | UsageError:
    takes = _ARGS[verb]
    if not takes:
        if rest:
            return UsageError(f"`{verb.value}` takes no arguments, but got `{_shown(' '.join(rest))}`.")
        return Command(verb, cluster=cluster)
    if len(rest) > 1:
        return UsageError(f"`{verb.value}` takes at most one argument {takes}, but got {len(rest)}.")
    arg = rest[0] if rest else None
    if verb is Verb.CANARY:
        if arg is None:
            return Command(verb, cluster=cluster, canary=CanaryAction.STATUS)
        try:
            return Command(verb, cluster=cluster, canary=CanaryAction(arg.lower()))
        except ValueError:
            return UsageError(f"`canary` takes `status` or `run`, not `{_shown(arg)}`.")
    if verb is Verb.AUDIT:
        if arg is None:
            return Command(verb, cluster=cluster, limit=AUDIT_DEFAULT)
        if not (arg.isascii() and arg.isdigit()) or not 1 <= int(arg) <= AUDIT_MAX:
            return UsageError(f"`audit` takes a number of events from 1 to {AUDIT_MAX}, not `{_shown(arg)}`.")
        return Command(verb, cluster=cluster, limit=int(arg))
    if arg is not None and not _WAVE.fullmatch(arg):
        return UsageError(f"`{_shown(arg)}` is not a wave: give its number (`2`) or its name in the plan.")
    return Command(verb, cluster=cluster, wave=arg)


def _shown(text: str, limit: int = 40) -> str:
    """User text quoted back safely: no backticks to break out of code spans, bounded length."""
    cleaned = text.replace("`", "'")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
