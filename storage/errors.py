"""Storage's refusals, in the domain's error tree: each message names the database, the reason and the fix."""

from __future__ import annotations

from bot.domain.errors import DomainError


class StorageError(DomainError):
    """Something about the database stops migratebot; the message says what to do."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or opened."""


class SchemaNotCurrent(StorageError):
    """The database's schema is missing, older or newer than this migratebot's."""


class NotFound(StorageError):
    """A migration, wave, node or step that the caller named does not exist."""


class PlanConflict(StorageError):
    """A plan that reorders or renames waves already registered for the cluster."""


class AlreadyDecided(StorageError):
    """A person tried to decide a wave twice, differently."""
