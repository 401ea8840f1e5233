"""The domain's error tree. Every message is written to be shown to a person as is."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the migration was broken; the message names the object, the reason and the fix."""


class IllegalTransition(DomainError):
    """A trigger that the wave's current state does not allow."""


class Forbidden(DomainError):
    """The actor lacks the role a trigger needs (or breaks the two-person rule)."""


class ConcurrentTransition(DomainError):
    """Someone else changed the wave between our read and our write; nothing was changed."""
