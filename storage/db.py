"""The engine and its transactions: SQLite tuned for one writer at a time, PostgreSQL with pre-ping."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option read by the SQLite BEGIN hook: reads begin DEFERRED so they never wait for the
# write lock (WAL lets them read beside a writer); everything else begins IMMEDIATE.
_SQLITE_BEGIN = "migratebot_sqlite_begin"

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]*(@)")


def redacted_url(url: str | URL) -> str:
    """The URL with its password masked: the only form of a database URL that may be printed or logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _PASSWORD_IN_URL.sub(r"\1***\2", str(url))


def unavailable(url: str | URL, error: BaseException) -> DatabaseUnavailable:
    """The error a person sees when the database can't be reached: which database, why, what to check."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = reason[0] if reason else type(error).__name__
    return DatabaseUnavailable(
        f"can't open database {redacted_url(url)}: {first} — check MIGRATEBOT_DATABASE_URL "
        "and that the database server is running and reachable"
    )


@contextmanager
def scratch_schema(base_url: str, prefix: str = "mbt") -> Iterator[str]:
    """A new, empty PostgreSQL schema for one run (tests, benchmarks, the soak): the URL whose
    search_path is that schema; the schema is dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


class Database:
    """One engine per URL and process. Repositories open their transactions through it."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        try:
            self.url: URL = make_url(url)
        except ArgumentError as error:
            raise DatabaseUnavailable(
                f"MIGRATEBOT_DATABASE_URL {redacted_url(url)} is not a database URL: {error} — "
                "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:5432/DB"
            ) from error
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        try:
            self.engine: Engine = (
                _sqlite_engine(self.url, echo) if self.is_sqlite else _server_engine(self.url, echo)
            )
        except (ArgumentError, ImportError) as error:
            raise DatabaseUnavailable(
                f"can't use database {self.redacted_url}: {error} — migratebot supports sqlite:///PATH "
                "and postgresql+psycopg://USER:PASSWORD@HOST:5432/DB"
            ) from error
        except OSError as error:
            raise unavailable(self.url, error) from error
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(
            self.engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"}), expire_on_commit=False
        )

    @property
    def redacted_url(self) -> str:
        return redacted_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back when it raises.

        For repositories only: no session leaves storage/. Failing to reach the database becomes
        DatabaseUnavailable; every other error propagates as it is.
        """
        factory = self._write if write else self._read
        try:
            with factory.begin() as session:
                yield session
        except DBAPIError as error:
            if _is_connect_error(error):
                raise unavailable(self.url, error) from error
            raise

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in a write transaction, for schema work (Alembic) and tests."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except DBAPIError as error:
            if _is_connect_error(error):
                raise unavailable(self.url, error) from error
            raise

    def ping(self) -> None:
        """Raise DatabaseUnavailable naming the URL and the reason when the database can't be reached."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except DBAPIError as error:
            raise unavailable(self.url, error) from error

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.redacted_url!r})"


def _is_connect_error(error: DBAPIError) -> bool:
    # Connection failures surface as OperationalError from the DBAPI before any statement ran.
    if error.connection_invalidated:
        return True
    return type(error).__name__ == "OperationalError" and error.statement is None


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in str(url.query.get("mode", ""))
    pool: dict[str, Any] = {}
    if not in_memory:
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Threads wait for a pooled connection instead of failing; SQLite itself queues the writers.
        pool = {"pool_size": 20, "max_overflow": 20}
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module (it would BEGIN DEFERRED, and upgrading a
        # read lock to a write lock under contention fails at once with "database is locked").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _server_engine(url: URL, echo: bool) -> Engine:
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
