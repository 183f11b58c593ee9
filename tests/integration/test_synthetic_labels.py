"""Generated (SYNTHETIC) tokens are never shown as market data: the token page says so."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from coinlens.api.app import create_app
from coinlens.pipeline import synthetic
from coinlens.services import catalog
from coinlens.services.context import build_context
from coinlens.settings import get_settings
from coinlens.storage import repo

BANNER = "<strong>SYNTHETIC data</strong> — not market data."


def test_token_page_of_a_synthetic_token_carries_the_banner(tmp_path: Path) -> None:
    settings = get_settings(env="test", data_dir=tmp_path)
    ctx = build_context(settings)
    try:
        # the bench/test universe names its first tokens BTC and ETH
        synthetic.write_universe(ctx, synthetic.make_universe(3, 60, start=date(2024, 6, 1)))
        # a generated token labelled only by its name, as tests and benches also write them
        with ctx.engine.begin() as conn:
            repo.upsert_tokens(
                conn, [{"symbol": "SYN9", "name": "SYN9 (SYNTHETIC)", "categories": []}]
            )
        assert synthetic.LABEL in catalog.get_token(ctx, "BTC").categories
    finally:
        ctx.engine.dispose()
    with TestClient(create_app(settings)) as client:
        btc = client.get("/t/BTC")
        named = client.get("/t/SYN9")

    assert btc.status_code == 200
    assert BANNER in btc.text
    assert named.status_code == 200
    assert BANNER in named.text
