"""The engine as configured: SQLite tuned for concurrent writers, UTC-aware times, URLs without secrets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from storage.db import Database, redacted_url
from storage.models import Migration, MigrationStatus


def test_a_url_shown_to_people_has_its_password_masked() -> None:
    assert (
        redacted_url("postgresql+psycopg://bot:s3cr3t@db:5432/mb")
        == "postgresql+psycopg://bot:***@db:5432/mb"
    )
    assert (
        redacted_url("sqlite:////var/lib/migratebot/migratebot.db")
        == "sqlite:////var/lib/migratebot/migratebot.db"
    )
    assert "s3cr3t" not in redacted_url("not a url://bot:s3cr3t@db")
    assert "s3cr3t" not in repr(Database("postgresql+psycopg://bot:s3cr3t@127.0.0.1:1/mb"))


def test_a_sqlite_database_gets_its_directory_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    with Database(f"sqlite:///{path}") as database, database.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert path.exists()


def test_times_come_back_aware_in_utc_whatever_zone_they_went_in(database: Database) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    created = dt.datetime(2026, 3, 1, 13, 30, 15, 123456, tzinfo=paris)
    with database.transaction() as session:
        session.add(Migration(cluster="c", plan_hash="h", status=MigrationStatus.ACTIVE, created_at=created,
                              updated_at=created))  # fmt: skip
    with database.transaction(write=False) as session:
        row = session.scalars(select(Migration)).one()
        assert row.created_at == created
        assert row.created_at.tzinfo is dt.UTC
        assert row.created_at.hour == 12


def test_a_naive_time_is_refused_rather_than_guessed(database: Database) -> None:
    naive = dt.datetime(2026, 3, 1, 12, 0)
    row = Migration(
        cluster="c", plan_hash="h", status=MigrationStatus.ACTIVE, created_at=naive, updated_at=naive
    )
    with database.transaction() as session:
        session.add(row)
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()
        session.rollback()
