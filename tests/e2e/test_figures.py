"""The figures users compare with the source data, on the real embedded dataset: what each
number is measured from, the currency and unit it is in, and the market it comes from."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.xdist_group("embedded")


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_roi_names_the_first_close_it_measures_from(read_client: TestClient) -> None:
    # AXS's daily series is the Binance perpetual, whose source keeps 800 candles: it starts
    # 2024-01-10, years after AXS listed, so "since listing" and the high are since then
    roi = _ok(read_client.get("/v1/tokens/AXS/roi"))
    token = _ok(read_client.get("/v1/tokens/AXS"))
    first = _ok(read_client.get("/v1/tokens/AXS/ohlcv?end=2024-01-10"))["candles"]

    assert roi["first_close"] == token["first_candle"][:10] == "2024-01-10"
    assert first[0]["open_time"].startswith(roi["first_close"])
    assert roi["roi"]["since_listing"] == pytest.approx(roi["close"] / first[0]["close"] - 1)
    # POL's series runs on from MATIC's spot history
    assert _ok(read_client.get("/v1/tokens/POL/roi"))["first_close"] == "2019-04-26"


def test_token_page_says_since_when_returns_and_drawdowns_run(read_client: TestClient) -> None:
    response = read_client.get("/t/AXS")
    assert response.status_code == 200
    page = response.text

    assert "since 2024-01-10</th>" in page
    assert "from high since 2024-01-10</th>" in page
    assert "Max drawdown since 2024-01-10</th>" in page
    assert ">since listing<" not in page
    assert ">from ATH<" not in page


def test_hourly_chart_shows_the_market_that_has_hourly_candles(read_client: TestClient) -> None:
    # PEPE's daily series is the 1000PEPEUSDT perpetual (no hourly candles); its hourly
    # candles are spot PEPEUSDT's, and the page offers the 1h chart
    chart = _ok(read_client.get("/web/t/PEPE/chart.json?tf=1h"))
    hourly = _ok(
        read_client.get(
            "/v1/tokens/PEPE/ohlcv?timeframe=1h&market=binance:spot:PEPEUSDT&start=2025-09-30"
        )
    )["candles"]
    page = read_client.get("/t/PEPE").text

    assert chart["market"] == "binance:spot:PEPEUSDT"
    assert len(chart["candles"]) >= 90 * 24  # the last 90 days of hours
    assert chart["candles"][-1][4] == pytest.approx(hourly[-1]["close"])
    assert "hourly: binance:spot:PEPEUSDT" in page
    assert 'data-tf="1h" aria-pressed="false">' in page  # enabled


def test_prices_are_labelled_with_the_primary_markets_quote(read_client: TestClient) -> None:
    pepe = read_client.get("/t/PEPE").text  # binance:perp:1000PEPEUSDT
    aave = read_client.get("/t/AAVE").text  # coinbase:spot:AAVE-USD
    fragment = read_client.get("/web/t/PEPE/price").text

    assert "</span> <small>USDT · " in pepe
    assert "Price (USDT)" in pepe
    assert "</span> <small>USD · " in aave
    assert "</span> <small>USDT · " in fragment


def test_gas_prices_name_the_token_their_gwei_are_of(read_client: TestClient) -> None:
    chains = {c["chain"]: c for c in _ok(read_client.get("/v1/ecosystem/chains"))["items"]}
    page = read_client.get("/ecosystem").text

    paid_in = {name: c["gas_token"] for name, c in chains.items()}
    # Polygon PoS's ~65 gwei are of POL, not of ETH; BSC has no gas series here
    assert paid_in == {
        "ethereum": "ETH",
        "arbitrum": "ETH",
        "optimism": "ETH",
        "polygon": "POL",
        "bsc": None,
        "avalanche": None,
    }
    assert chains["bsc"]["gas_price_gwei"] is None
    assert "</span> <small>POL</small>" in page


SUB_GRADE = re.compile(r'class="sval">([\d.]+) × ([\d.]+) = ([\d.]+)<')


@pytest.mark.parametrize("symbol", ["BTC", "ETH", "PEPE", "SOL", "AXS"])
def test_grade_breakdowns_add_up_as_shown(read_client: TestClient, symbol: str) -> None:
    page = read_client.get(f"/t/{symbol}").text
    rows = [tuple(map(float, m)) for m in SUB_GRADE.findall(page)]

    assert len(rows) == 6
    for grade, weight, contribution in rows:
        # each shown figure is rounded to its last digit: the product must agree within that
        assert abs(grade * weight - contribution) <= 0.05 * weight + 0.05 + 1e-9


def test_daily_chart_volume_is_the_venues_quote_volume(read_client: TestClient) -> None:
    # the overview's "Volume 24h" of a perpetual is its quote volume; the chart's bar of the
    # same day is too (base volume × close differs by a few per cent on perpetuals)
    for symbol in ("PEPE", "BTC"):
        chart = _ok(read_client.get(f"/web/t/{symbol}/chart.json"))
        last = _ok(read_client.get(f"/v1/tokens/{symbol}/ohlcv?start=2025-09-30"))["candles"][-1]
        expected = last["quote_volume"] or last["volume"] * last["close"]

        assert chart["volume"][-1][0] == chart["candles"][-1][0]
        assert chart["volume"][-1][1] == pytest.approx(expected, rel=1e-3)  # 4 digits shown


def test_ohlcv_without_candles_on_the_primary_market_names_the_one_with_them(
    read_client: TestClient,
) -> None:
    body = _ok(read_client.get("/v1/tokens/PEPE/ohlcv?timeframe=1h&limit=5"))

    assert body["candles"] == []
    assert body["warnings"] == [
        "PEPE has no 1h candles on binance:perp:1000PEPEUSDT; "
        "binance:spot:PEPEUSDT has them (pass market=)"
    ]


def test_l2_share_names_the_rollups_it_counts(read_client: TestClient) -> None:
    body = _ok(read_client.get("/v1/ecosystem/chains"))
    tvl = {c["chain"]: c["tvl_usd"] for c in body["items"]}

    # Base, zkSync… are not in the data: the method must not suggest they are counted
    assert "(held here: arbitrum, optimism)" in body["l2_share_method"]
    assert "…" not in body["l2_share_method"]
    rollups = tvl["arbitrum"] + tvl["optimism"]
    assert body["l2_share"] == pytest.approx(rollups / (tvl["ethereum"] + rollups))
