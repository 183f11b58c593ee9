"""The packaged dataset obeys its contract (real data, cut at 2025-09-30 UTC)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coinlens.connectors.embedded import (
    DATASET_NAMES,
    EMBEDDED_DIR,
    SCHEMAS,
    dataset_summary,
    read_embedded,
)
from coinlens.connectors.layouts import LAYOUTS, Hints, market_for
from coinlens.domain.errors import DataUnavailable, NotFound, ValidationFailed

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
CUTOFF_END = pd.Timestamp("2025-10-01", tz="UTC")
CUTOFF_DAY = pd.Timestamp("2025-09-30").date()


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {name: read_embedded(name).to_pandas() for name in DATASET_NAMES}


def test_every_file_matches_its_schema() -> None:
    for name in DATASET_NAMES:
        table = read_embedded(name)
        assert table.schema.names == SCHEMAS[name].names
        assert table.num_rows > 0, name


def test_token_universe_is_broad(frames: dict[str, pd.DataFrame]) -> None:
    tokens = frames["tokens"]
    assert len(tokens) >= 150
    assert tokens["symbol"].is_unique
    assert (tokens["symbol"] == tokens["symbol"].str.upper()).all()
    stable = set(tokens.loc[tokens["is_stablecoin"], "symbol"])
    assert not stable & {"BTC", "ETH", "PAXG", "USTC"}


def test_every_market_symbol_is_a_token(frames: dict[str, pd.DataFrame]) -> None:
    markets, tokens = frames["markets"], frames["tokens"]
    assert markets["market_key"].is_unique
    assert set(markets["symbol"]) <= set(tokens["symbol"])
    assert set(markets["instrument"]) <= {"spot", "perp"}
    assert (markets["contract_multiplier"] >= 1).all()
    for name in ("candles_1d", "candles_1h"):
        assert set(frames[name]["market_key"]) <= set(markets["market_key"]), name


@pytest.mark.parametrize("name", ["candles_1d", "candles_1h"])
def test_candles_are_valid_and_cut_off(frames: dict[str, pd.DataFrame], name: str) -> None:
    c = frames[name]
    assert not c.duplicated(["market_key", "open_time"]).any()
    assert c["open_time"].max() < CUTOFF_END
    assert (c["high"] >= c["low"]).all()
    assert (c[["open", "high", "low", "close"]] > 0).all().all()
    assert (c[["open", "close"]].max(axis=1) <= c["high"]).all()
    assert (c[["open", "close"]].min(axis=1) >= c["low"]).all()
    assert (c["volume"] >= 0).all()


def test_eth_binance_spot_daily_is_complete(frames: dict[str, pd.DataFrame]) -> None:
    c = frames["candles_1d"]
    eth = c.loc[c["market_key"] == "binance:spot:ETHUSDT", "open_time"].sort_values()
    assert eth.iloc[0] == pd.Timestamp("2017-08-17", tz="UTC")
    assert eth.iloc[-1] == pd.Timestamp("2025-09-30", tz="UTC")
    expected = pd.date_range("2017-08-17", "2025-09-30", freq="D", tz="UTC")
    assert len(eth) == len(expected)
    assert (eth.to_numpy() == expected.to_numpy()).all()


def test_known_prices(frames: dict[str, pd.DataFrame]) -> None:
    c = frames["candles_1d"].set_index(["market_key", "open_time"])["close"]
    day = pd.Timestamp("2021-11-10", tz="UTC")
    assert c[("binance:spot:BTCUSDT", day)] == pytest.approx(64_882, rel=1e-3)
    assert c[("binance:spot:ETHUSDT", day)] == pytest.approx(4_629, rel=1e-3)


def test_pepe_is_one_token_with_several_markets(frames: dict[str, pd.DataFrame]) -> None:
    tokens, markets, c = frames["tokens"], frames["markets"], frames["candles_1d"]
    assert (tokens["symbol"] == "PEPE").sum() == 1
    pepe = markets[markets["symbol"] == "PEPE"].set_index("market_key")
    assert len(pepe) >= 2
    assert pepe.loc["binance:perp:1000PEPEUSDT", "contract_multiplier"] == 1000
    assert pepe.loc["binance:perp:1000PEPEUSDT", "instrument"] == "perp"
    assert "binance:spot:PEPEUSDT" in pepe.index
    px = c[c["market_key"].isin(pepe.index)].copy()
    px["token_close"] = px["close"] / px["market_key"].map(pepe["contract_multiplier"])
    wide = px.pivot(index="open_time", columns="market_key", values="token_close").dropna()
    assert len(wide) >= 100
    spread = wide.max(axis=1) / wide.min(axis=1) - 1
    assert spread.median() < 0.01
    assert spread.max() < 0.05


def test_pol_holds_the_matic_history(frames: dict[str, pd.DataFrame]) -> None:
    markets, c = frames["markets"], frames["candles_1d"]
    assert "MATIC" not in set(frames["tokens"]["symbol"])
    matic = markets.set_index("market_key").loc["binance:spot:MATICUSDT"]
    assert matic["symbol"] == "POL"
    assert matic["pair"] == "MATICUSDT"
    days = c.loc[c["market_key"] == "binance:spot:MATICUSDT", "open_time"]
    assert days.min() < pd.Timestamp("2020-01-01", tz="UTC")
    assert days.max() == pd.Timestamp("2024-09-10", tz="UTC")
    assert "binance:perp:POLUSDT" in set(markets.loc[markets["symbol"] == "POL", "market_key"])


def test_imported_files_feed_the_loaded_markets_and_tokens(
    frames: dict[str, pd.DataFrame],
) -> None:
    """A file of a venue pair we ship (e.g. a fresher Coinbase export) must land on the loaded
    market and token, not create a twin `coinbase:spot:BTCUSD` or an orphan `LUNA2` token."""
    canonical = next(layout for layout in LAYOUTS if layout.name == "canonical")
    wrong = []
    for m in frames["markets"].itertuples():
        hints = Hints(exchange=m.exchange, instrument=m.instrument)
        spec = market_for(m.pair, canonical, hints)
        got = spec if isinstance(spec, str) else (spec.market_key, spec.token)
        if got != (m.market_key, m.symbol):
            wrong.append(f"{m.pair} on {m.exchange}: {got}, loaded as {m.market_key} {m.symbol}")
    assert wrong == []


def test_market_caps_stop_before_the_cutoff(frames: dict[str, pd.DataFrame]) -> None:
    mc = frames["market_caps"]
    assert mc["snapshot_date"].max() <= CUTOFF_DAY
    assert not mc.duplicated(["symbol", "snapshot_date"]).any()
    btc = mc[(mc["symbol"] == "BTC") & (mc["snapshot_date"] == pd.Timestamp("2024-03-01").date())]
    assert btc["price"].iloc[0] == pytest.approx(62_441, rel=1e-3)
    assert "MATIC" not in set(mc["symbol"])


def test_metrics_present(frames: dict[str, pd.DataFrame]) -> None:
    m = frames["metrics"]
    snapshot = m["metric"].str.startswith("lst_")  # the one dated staking snapshot
    assert m.loc[~snapshot, "date"].max() <= CUTOFF_DAY
    assert set(m.loc[snapshot, "date"]) == {pd.Timestamp("2025-11-03").date()}
    lido = m[(m["entity"] == "lido:STETH:ethereum") & (m["metric"] == "lst_apr")]
    assert lido["value"].iloc[0] == pytest.approx(2.496)
    assert not m.duplicated(["entity", "metric", "date"]).any()
    present = set(zip(m["metric"], m["entity"], strict=True))
    for chain in ("ethereum", "arbitrum", "optimism", "polygon"):
        assert ("gas_price_gwei", chain) in present
    for metric in ("tx_count", "unique_addresses_total", "network_utilization", "active_addresses"):
        assert (metric, "ethereum") in present
    assert ("tvl_usd", "ethereum") in present
    assert ("supply_usd", "all_stablecoins") in present
    assert ("supply_usd", "USDT") in present
    gas = m[(m["metric"] == "gas_price_gwei") & (m["entity"] == "ethereum")].set_index("date")
    assert gas.loc[pd.Timestamp("2021-11-10").date(), "value"] == pytest.approx(173.9, rel=0.01)


def test_summary_counts() -> None:
    s = dataset_summary()
    assert s.tokens >= 150
    assert s.markets_by_instrument["perp"] >= 150
    assert s.candle_ranges["candles_1d"][1] == CUTOFF_DAY
    assert s.rows["candles_1d"] > 100_000


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        read_embedded("prices")
    with pytest.raises(DataUnavailable, match="missing"):
        read_embedded("tokens", tmp_path)
    pq.write_table(pa.table({"symbol": ["BTC"], "name": [1]}), tmp_path / "tokens.parquet")
    with pytest.raises(ValidationFailed) as info:
        read_embedded("tokens", tmp_path)
    locations = {p.location for p in info.value.problems}
    assert "tokens.name" in locations
    assert "tokens.is_stablecoin" in locations
    (tmp_path / "markets.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataUnavailable, match="cannot be read"):
        read_embedded("markets", tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA / "daily_ohlcv").is_dir(),
    reason="../shared/data (the raw source files) is not available here",
)
def test_builder_reproduces_the_packaged_dataset(tmp_path: Path) -> None:
    script = REPO / "scripts" / "build_dataset.py"
    out = tmp_path / "rebuilt"
    subprocess.run(
        [sys.executable, str(script), "--source", str(SHARED_DATA), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    for name in [*DATASET_NAMES]:
        rebuilt = read_embedded(name, out)
        assert rebuilt.equals(read_embedded(name, EMBEDDED_DIR)), f"packaged {name} is stale"
    assert (out / "PROVENANCE.md").read_text() == (EMBEDDED_DIR / "PROVENANCE.md").read_text()
