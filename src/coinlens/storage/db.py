"""Engines for the embedded SQLite file and PostgreSQL, and the Alembic upgrade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Engine

from coinlens.domain.errors import CoinlensError, ConfigError, TemporaryError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def json_dumps(value: Any) -> str:
    """JSON columns' serializer: orjson (10x the stdlib on analytics payloads); NaN → null."""
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    if not normalise_url(url).startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    url = normalise_url(url)
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        if (path := sqlite_path(url)) is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create {path.parent} for the database {path.name}: {exc.strerror}"
                ) from exc
        engine = _create(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return _create(url, pool_pre_ping=True, **kwargs)
    raise ConfigError(f"unsupported database URL {url!r}")


def _create(url: str, **kwargs: Any) -> Engine:
    try:
        return sa.create_engine(url, **kwargs)
    except (ImportError, sa.exc.NoSuchModuleError, sa.exc.ArgumentError) as exc:
        # e.g. postgresql+asyncpg:// (not installed, and async) or a malformed URL
        shown = sa.engine.make_url(url).render_as_string() if "://" in url else "?"
        raise ConfigError(
            f"cannot use the database URL {shown}: {exc}; "
            "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"
        ) from exc


def database_error(exc: sa.exc.DBAPIError, url: str) -> CoinlensError | None:
    """A driver error that is the deployment's or the moment's, as the domain's (else None).

    The database away, busy or locked is a TemporaryError; a SQLite file that cannot be
    opened, is not a database or is damaged is a ConfigError naming the file. Other errors
    (integrity, programming) are bugs and are left as they are.
    """
    if type(exc) is not sa.exc.DatabaseError and not isinstance(exc, sa.exc.OperationalError):
        return None
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    path = sqlite_path(url)
    if path is not None:
        if "not a database" in reason or "malformed" in reason:
            return ConfigError(
                f"the SQLite file {path} is damaged or not a Coinlens database ({reason}): "
                "restore it from a backup, or move it aside to start afresh"
            )
        if "unable to open" in reason:
            return ConfigError(
                f"cannot open the SQLite file {path} ({reason}): "
                "its directory must exist and be writable"
            )
        if "locked" in reason or "busy" in reason:
            return TemporaryError(
                f"the SQLite file {path} is busy ({reason}): another process is writing "
                "to it; try again when it has finished"
            )
        if "readonly" in reason or "read-only" in reason:
            return ConfigError(f"the SQLite file {path} cannot be written ({reason})")
    return TemporaryError(f"database error: {reason}")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at our packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = engine.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply migrations up to `revision` (idempotent)."""
    cfg = alembic_config(engine)
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite and revision == "heads" and _heads(conn) == code_revision():
                conn.rollback()
                return  # nothing to do: no write lock asked (a long write elsewhere is fine)
            # SQLite alters a table by rebuilding it (copy, drop, rename): with foreign keys
            # on, dropping a referenced table fails, so they are off while migrating (only
            # possible outside a transaction) and every reference is checked before commit
            _sqlite_foreign_keys(conn, on=False, enabled=sqlite)
            try:
                with conn.begin():
                    if sqlite:
                        # pysqlite opens a transaction only before INSERT/UPDATE/DELETE: the
                        # CREATE TABLEs before would each commit on their own, so a migration
                        # killed part-way left its tables without its revision, and two
                        # processes migrating at once collided ('table … already exists').
                        # One IMMEDIATE transaction: all or nothing, and one migrator at a time
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    cfg.attributes["connection"] = conn
                    before = _heads(conn)
                    command.upgrade(cfg, revision)
                    if sqlite and _heads(conn) != before:  # it reads every row: only then
                        _check_foreign_keys(conn)
            finally:
                _sqlite_foreign_keys(conn, on=True, enabled=sqlite)
    except CommandError as exc:  # e.g. the database is at a revision this code does not know
        raise ConfigError(f"cannot migrate the database: {exc}") from exc
    except sa.exc.DBAPIError as exc:
        problem = database_error(exc, engine.url.render_as_string(hide_password=False))
        if problem is None:
            raise
        raise type(problem)(f"while migrating: {problem.detail}") from exc


def _check_foreign_keys(conn: sa.Connection) -> None:
    if bad := conn.exec_driver_sql("PRAGMA foreign_key_check").all():
        raise ConfigError(f"migrating broke foreign keys: {bad[:5]}")


def _sqlite_foreign_keys(conn: sa.Connection, *, on: bool, enabled: bool) -> None:
    if enabled:
        conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        conn.commit()


def _heads(conn: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return ",".join(sorted(MigrationContext.configure(conn).get_current_heads())) or None


def current_revision(engine: Engine) -> str | None:
    """The applied migration revision(s), comma-joined; None for an empty database."""
    with engine.connect() as conn:
        return _heads(conn)


def code_revision() -> str:
    """The newest revision(s) shipped with this code, comma-joined like `current_revision`."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ",".join(sorted(ScriptDirectory.from_config(cfg).get_heads()))
