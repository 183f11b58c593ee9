"""Shared fixtures: databases on SQLite and (really) PostgreSQL, and a service context."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coinlens.services.context import Context, build_context
from coinlens.settings import Settings, get_settings
from coinlens.storage.db import make_engine

PG_ADMIN_URL = os.environ.get(
    "COINLENS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_available() -> bool:
    try:
        eng = make_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def require_postgres() -> None:
    """Skip locally without PostgreSQL; under CI=true a missing server is a failure."""
    if not _pg_available():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required under CI=true", pytrace=False)
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema on the real server, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    yield f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on the embedded SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'coinlens.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings pointing at a throwaway data dir and the parametrised database."""
    return get_settings(env="test", data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    """A migrated service context."""
    context = build_context(settings)
    yield context
    context.engine.dispose()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on the embedded SQLite default only."""
    return get_settings(env="test", data_dir=tmp_path / "data")


@pytest.fixture
def sqlite_ctx(sqlite_settings: Settings) -> Iterator[Context]:
    """A migrated SQLite-only context, for tests that are not about storage."""
    context = build_context(sqlite_settings)
    yield context
    context.engine.dispose()


def engine_of(ctx: Context) -> Engine:
    """The engine of a context (helper for readability)."""
    return ctx.engine


# --- API keys (issue 5): tests of `/v1/*` send a key made through the service layer ---------

ApiHeaders = Callable[..., dict[str, str]]


def make_api_headers(
    target: Context | Settings,
    *,
    scopes: tuple[str, ...] = ("read", "alerts:write", "admin"),
    plan: str = "enterprise",
) -> dict[str, str]:
    """Headers carrying a fresh key (all scopes, a generous plan) stored in `target`'s database."""
    from coinlens.services.keys import KeySpec, create_key

    if isinstance(target, Context):
        created = create_key(target, KeySpec(name="pytest", scopes=scopes, plan=plan))
    else:
        context = build_context(target)
        try:
            created = create_key(context, KeySpec(name="pytest", scopes=scopes, plan=plan))
        finally:
            context.engine.dispose()
    return {"X-API-Key": created.plaintext}


@pytest.fixture
def api_headers() -> ApiHeaders:
    """`api_headers(ctx_or_settings, scopes=..., plan=...)` → `{"X-API-Key": "cl_live_…"}`."""
    return make_api_headers


REDIS_URL = os.environ.get("COINLENS_TEST_REDIS", "redis://127.0.0.1:6379/15")


def require_redis() -> None:
    """Skip locally without Redis; under CI=true a missing server is a failure."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis at 127.0.0.1:6379 is required under CI=true", pytrace=False)
        pytest.skip("Redis not reachable at 127.0.0.1:6379")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--online", action="store_true", default=False, help="also run tests against real venues"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`online` tests talk to real venues; they run only with --online."""
    if config.getoption("--online"):
        return
    skip = pytest.mark.skip(reason="needs --online (real venues)")
    for item in items:
        if "online" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def redis_url() -> str:
    """The real Redis (a test database); skipped locally if absent, a failure under CI=true."""
    require_redis()
    return REDIS_URL


# Under CI=true nothing may be skipped for a missing service, tool or package (importorskip,
# a module-level skip): such a skip is reported as a failure. Only these opt-in skips stay.
CI_ALLOWED_SKIPS = ("needs --online", "../shared/data")


def _failed_under_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not (IN_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
    if not any(allowed in reason for allowed in CI_ALLOWED_SKIPS):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must not skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _failed_under_ci(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _failed_under_ci(outcome.get_result())  # type: ignore[attr-defined]
