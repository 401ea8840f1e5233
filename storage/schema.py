"""The schema's version: upgrade it, read it, and refuse to run on a database that isn't current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url
from sqlalchemy.exc import DBAPIError

from storage.db import Database, redacted_url, unavailable
from storage.errors import SchemaNotCurrent

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
UPGRADE_HINT = "run `migratebot db upgrade`"


def alembic_config() -> Config:
    """Alembic configured in code, so it works from an installed wheel and from any directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations/versions holds no revision"
    return head


def known_revisions() -> frozenset[str]:
    return frozenset(
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema (idempotent: a current database is left as it is)."""
    with Database(url) as database:
        try:
            with database.connect() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except DBAPIError as error:
            raise unavailable(database.url, error) from error


def current_revision(url: str) -> str | None:
    """The database's schema revision, or None when it has no migratebot schema yet."""
    with Database(url) as database:
        return _current_revision(database)


def _current_revision(database: Database) -> str | None:
    try:
        with database.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise unavailable(database.url, error) from error


def ensure_current(url: str) -> None:
    """Raise SchemaNotCurrent saying which command to run, unless the schema is exactly this version's."""
    with Database(url) as database:
        check_current(database)


def open_current(url: str) -> Database:
    """A Database whose schema is exactly this version's. Refuses otherwise — and, for an embedded
    SQLite file that does not exist yet, refuses without creating it: a refused command changes nothing."""
    parsed = make_url(url)
    path = parsed.database
    if (
        parsed.get_backend_name() == "sqlite"
        and path
        and path != ":memory:"
        and not Path(path).expanduser().exists()
    ):
        raise SchemaNotCurrent(f"database {redacted_url(url)} has no migratebot schema yet — {UPGRADE_HINT}")
    database = Database(url)
    try:
        check_current(database)
    except BaseException:
        database.dispose()
        raise
    return database


def check_current(database: Database) -> None:
    """ensure_current on an existing Database (saves building a second engine at start-up)."""
    current = _current_revision(database)
    if current is None and _has_tables(database):
        # Tables without alembic_version: someone created them by hand, or another program owns them.
        raise SchemaNotCurrent(
            f"database {database.redacted_url} has tables but no migratebot schema revision — point "
            "MIGRATEBOT_DATABASE_URL at migratebot's own database, or at an empty one and "
            f"{UPGRADE_HINT}"
        )
    verdict = schema_verdict(database.redacted_url, current, head_revision(), known_revisions())
    if verdict is not None:
        raise SchemaNotCurrent(verdict)


def schema_verdict(shown_url: str, current: str | None, head: str, known: frozenset[str]) -> str | None:
    """What is wrong with a database at `current` for a migratebot at `head`, or None when it is current."""
    if current == head:
        return None
    if current is None:
        return f"database {shown_url} has no migratebot schema yet — {UPGRADE_HINT}"
    if current in known:
        return f"database {shown_url} is at revision {current}, this migratebot needs {head} — {UPGRADE_HINT}"
    return (
        f"database {shown_url} is at revision {current}, newer than this migratebot knows (head {head}) — "
        "upgrade migratebot, or point MIGRATEBOT_DATABASE_URL at the right database"
    )


def _has_tables(database: Database) -> bool:
    with database.engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    return bool(names & {"migrations", "waves", "audit_events"})
