"""SQLAlchemy 2 tables, Alembic migrations and repositories for SQLite and PostgreSQL."""
