"""End-to-end fixtures: the real embedded dataset loaded once into a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coinlens.api.app import create_app
from coinlens.services.context import Context, build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.services.loading import load_embedded
from coinlens.settings import get_settings
from e2e.stale_token import StaleToken, find_stale_token


@pytest.fixture(scope="session")
def loaded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose SQLite database holds the whole embedded dataset, with every pipeline
    step (analytics, grades, forecasts) computed once per test worker."""
    from coinlens.services.analytics import run_analytics
    from coinlens.services.forecasts import run_forecasts
    from coinlens.services.grades import run_grades

    data_dir = tmp_path_factory.mktemp("loaded")
    ctx = build_context(get_settings(env="test", data_dir=data_dir))
    load_embedded(ctx)
    run_analytics(ctx)
    run_grades(ctx)
    run_forecasts(ctx)
    ctx.engine.dispose()
    return data_dir


@pytest.fixture
def loaded_ctx(loaded_dir: Path) -> Iterator[Context]:
    """A context on the loaded embedded database."""
    ctx = build_context(get_settings(env="test", data_dir=loaded_dir))
    yield ctx
    ctx.engine.dispose()


@pytest.fixture(scope="module")
def read_client(loaded_dir: Path) -> Iterator[TestClient]:
    """A started app over the loaded database whose requests carry a read-only key."""
    settings = get_settings(env="test", data_dir=loaded_dir)
    ctx = build_context(settings)
    try:
        key = create_key(ctx, KeySpec(name="e2e", scopes=("read",), plan="enterprise"))
    finally:
        ctx.engine.dispose()
    with TestClient(create_app(settings), headers={"X-API-Key": key.plaintext}) as client:
        yield client


@pytest.fixture(scope="module")
def stale_token(loaded_dir: Path) -> StaleToken:
    """A token of the loaded data with enough history whose prices stopped long before the
    data's end (which ones depends on the markets feeding the daily series)."""
    found = find_stale_token(loaded_dir)
    if found is None:
        pytest.fail("the loaded data has no token whose prices stopped")
    return found
