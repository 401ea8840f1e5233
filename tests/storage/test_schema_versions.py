"""`migratebot db upgrade` and the refusal to run on a database whose schema isn't this version's."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.domain.errors import DomainError
from storage.db import Database, redacted_url
from storage.errors import DatabaseUnavailable, SchemaNotCurrent
from storage.schema import current_revision, ensure_current, head_revision, schema_verdict, upgrade


def test_upgrade_from_empty_reaches_head_and_a_second_upgrade_changes_nothing(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    ensure_current(database_url)


def test_an_upgraded_database_starts_its_audit_chain_at_genesis(migrated_url: str) -> None:
    with Database(migrated_url) as database, database.connect() as connection:
        head = connection.execute(text("SELECT id, seq, hash FROM audit_head")).all()
    assert [tuple(row) for row in head] == [(1, 0, "0" * 64)]


def test_an_unmigrated_database_is_refused_with_the_command_to_run(database_url: str) -> None:
    with pytest.raises(SchemaNotCurrent) as refused:
        ensure_current(database_url)
    message = str(refused.value)
    assert (
        message
        == f"database {redacted_url(database_url)} has no migratebot schema yet — run `migratebot db upgrade`"
    )
    assert isinstance(refused.value, DomainError)


def test_a_database_stamped_with_an_unknown_newer_revision_is_refused(migrated_url: str) -> None:
    with Database(migrated_url) as database, database.connect() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaNotCurrent) as refused:
        ensure_current(migrated_url)
    assert str(refused.value) == (
        f"database {redacted_url(migrated_url)} is at revision 9999, newer than this migratebot knows "
        f"(head {head_revision()}) — upgrade migratebot, "
        "or point MIGRATEBOT_DATABASE_URL at the right database"
    )


def test_an_older_revision_is_told_to_upgrade() -> None:
    verdict = schema_verdict("sqlite:///x.db", "0001", "0002", frozenset({"0001", "0002"}))
    assert verdict == (
        "database sqlite:///x.db is at revision 0001, this migratebot needs 0002 — "
        "run `migratebot db upgrade`"
    )


def test_tables_without_a_revision_are_not_mistaken_for_an_empty_database(database_url: str) -> None:
    with Database(database_url) as database, database.connect() as connection:
        connection.execute(text("CREATE TABLE migrations (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaNotCurrent, match="has tables but no migratebot schema revision"):
        ensure_current(database_url)


def test_an_unreachable_database_is_named_with_its_password_hidden_and_the_reason() -> None:
    url = "postgresql+psycopg://bot:hunter2@127.0.0.1:1/migratebot?connect_timeout=2"
    with pytest.raises(DatabaseUnavailable) as refused:
        ensure_current(url)
    message = str(refused.value)
    assert "hunter2" not in message
    assert "postgresql+psycopg://bot:***@127.0.0.1:1/migratebot" in message
    assert "refused" in message.lower() or "connect" in message.lower()
    assert "MIGRATEBOT_DATABASE_URL" in message


def test_upgrade_works_from_any_working_directory(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
