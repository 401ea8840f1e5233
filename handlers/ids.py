"""Every Slack id the bot registers or renders: the same enum member builds the element and routes it."""

from __future__ import annotations

import enum


class SlashCommand(enum.StrEnum):
    MIGRATE = "/migrate"


class WaveAction(enum.StrEnum):
    """Buttons on a wave request. Their values carry a RequestRef (wave id + version) and nothing else."""

    APPROVE = "wave_request.approve"
    DENY = "wave_request.deny"


class WaveBlock(enum.StrEnum):
    HEADER = "wave_request.header"
    SUMMARY = "wave_request.summary"
    DETAILS = "wave_request.details"
    READINESS = "wave_request.readiness"
    APPROVALS = "wave_request.approvals"
    DECISION = "wave_request.decision"
    OUTCOME = "wave_request.outcome"
    FOOTER = "wave_request.footer"


class HomeBlock(enum.StrEnum):
    HEADER = "home.header"
    CLUSTER = "home.cluster"
    FACTS = "home.facts"
    FOOTER = "home.footer"


class ProgressBlock(enum.StrEnum):
    """A wave's progress message and its results, in the request's thread."""

    STATUS = "wave_progress.status"
    HELD = "wave_progress.held"
    RESULT = "wave_progress.result"
    FOOTER = "wave_progress.footer"


class Event(enum.StrEnum):
    APP_HOME_OPENED = "app_home_opened"
