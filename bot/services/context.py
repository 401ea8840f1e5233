"""Opening the migration database for a command: checked against this version's schema first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.settings import Settings
from storage.repositories import Repositories
from storage.schema import open_current


@contextmanager
def open_storage(settings: Settings) -> Iterator[Repositories]:
    """The repositories over the configured database; SchemaNotCurrent (saying which command to run)
    when the schema is missing, older or newer — before anything is read or written."""
    database = open_current(settings.resolved_database_url)
    try:
        yield Repositories.over(database)
    finally:
        database.dispose()
