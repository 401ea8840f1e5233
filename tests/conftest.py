"""Shared database fixtures: every test that needs a database gets its own, on SQLite and PostgreSQL.

PostgreSQL runs when MIGRATEBOT_TEST_DATABASE_URL is set (`make test` sets it): each test gets a fresh
schema `mbt_<hex>` reached through `options=-csearch_path=…`, so xdist workers and concurrent CI runs
never see each other's tables; the schema is dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from storage.db import Database, redacted_url, scratch_schema
from storage.schema import upgrade

POSTGRES_ENV = "MIGRATEBOT_TEST_DATABASE_URL"
POSTGRES_HINT = (
    f"PostgreSQL cases skipped: {POSTGRES_ENV} is not set — run them with "
    f"{POSTGRES_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test (`make test` sets it)"
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """MIGRATEBOT_TEST_DATABASE_URL, checked once per session: skip when unset, fail when unreachable."""
    base_url = os.environ.get(POSTGRES_ENV)
    if not base_url:
        pytest.skip(POSTGRES_HINT)
    problem = None
    engine = create_engine(base_url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        problem = str(error.orig or error).strip().splitlines()[0]
    finally:
        engine.dispose()
    if problem:
        pytest.fail(
            f"{POSTGRES_ENV} is set to {redacted_url(base_url)} but PostgreSQL can't be used: {problem} — "
            f"start PostgreSQL, or unset {POSTGRES_ENV} to run SQLite only",
            pytrace=False,
        )
    return base_url


@pytest.fixture
def fresh_postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A URL on PostgreSQL only, in a new empty schema (for tests that need several processes on it)."""
    with scratch_schema(postgres_base_url) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (no schema): a SQLite file in tmp_path, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'migratebot.db'}"
        return
    with scratch_schema(request.getfixturevalue("postgres_base_url")) as url:
        yield url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """The URL of a new database upgraded to this migratebot's schema."""
    upgrade(database_url)
    return database_url


@pytest.fixture
def database(migrated_url: str) -> Iterator[Database]:
    """A Database on a new, migrated database; disposed after the test."""
    with Database(migrated_url) as db:
        yield db


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite Database only, for tests that don't need to run on both backends."""
    url = f"sqlite:///{tmp_path / 'db' / 'migratebot.db'}"
    upgrade(url)
    with Database(url) as db:
        yield db
