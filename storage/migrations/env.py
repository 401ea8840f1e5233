"""Alembic environment: runs on the connection storage.schema hands over (any cwd, installed or not).

For developers, `alembic -c storage/alembic.ini -x url=sqlite:///dev.db revision --autogenerate -m …`
also works: without a handed-over connection, the URL comes from `-x url=` or MIGRATEBOT_DATABASE_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("MIGRATEBOT_DATABASE_URL")
    if not url:
        raise SystemExit(
            "give the database: alembic -x url=sqlite:///PATH … (or set MIGRATEBOT_DATABASE_URL)"
        )
    database = Database(url)
    try:
        with database.connect() as connection:
            _run(connection)
    finally:
        database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run `migratebot db upgrade`")
run_migrations_online()
