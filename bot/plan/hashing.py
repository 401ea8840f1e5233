"""The plan hash approvals bind to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.domain.canonical import canonical_hash

if TYPE_CHECKING:
    from bot.plan.models import Plan


def plan_hash(plan: Plan) -> str:
    """sha256 of the parsed plan's canonical JSON: comments, formatting and key order don't change it.

    Defaults count as written: a plan that spells out a default and one that leaves it out hash the
    same, because they mean the same.
    """
    return canonical_hash(plan.model_dump(mode="json"))
