"""Durable migration state: SQLAlchemy models, Alembic migrations, use-case repositories, the audit chain."""
