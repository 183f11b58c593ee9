#!/usr/bin/env python
"""Rebuild the packaged dataset (src/coinlens/connectors/dataset) from ../shared/data.

Real historical market data only; every time series is cut at 2025-09-30 UTC (inclusive).
Snapshot files dated 2025-10/11 feed token *metadata* only (names, ids, supply, sectors).
Output is deterministic: rows sorted, zstd level 9, no build timestamps anywhere.
Uses no network.

    .venv/bin/python scripts/build_dataset.py [--source DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
try:
    from coinlens.connectors.embedded import SCHEMAS
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(REPO / "src"))
    from coinlens.connectors.embedded import SCHEMAS

CUTOFF_DAY = pd.Timestamp("2025-09-30")
CUTOFF_END = pd.Timestamp("2025-10-01", tz="UTC")  # candles must OPEN before this instant
COMPRESSION_LEVEL = 19

# --------------------------------------------------------------------------------------
# Source datasets (repo + commit from ../shared/data/PROVENANCE.md)
# --------------------------------------------------------------------------------------
SOURCES: dict[str, tuple[str, str, str]] = {
    # id: (repo, commit, shared path)
    "binance_spot_yanniedog": (
        "yanniedog/binance-historical-OHLCV-data",
        "1a00f0748cc41ff0e476285ad927ce3bbc133893",
        "daily_ohlcv/binance_spot_yanniedog/*USDT_1d.csv.gz, "
        "hourly_ohlcv/binance_spot_yanniedog/*USDT_1h.csv.gz",
    ),
    "binance_spot_marketlab": (
        "Harthor/marketlab",
        "6135a753162dd7dfe1c4d7fd282c1c8b65c5bede",
        "daily_ohlcv/binance_spot_marketlab/*_USDT-1d.csv.gz, "
        "hourly_ohlcv/binance_spot_marketlab/*_USDT-1h.csv.gz",
    ),
    "binance_usdm_perp_gravestone": (
        "silertrades/gravestone-data",
        "e6c3307d89bdb3b477cdd21f44e9556fb5741f9c",
        "daily_ohlcv/binance_usdm_perp_gravestone/binance_usdm_perp_1d.csv.gz",
    ),
    "coinbase_smoothbrainquant": (
        "smoothbrainquant/trading-for-new-dads",
        "ca5c8252b300529d173259b29764cf6e926d77a5",
        "daily_ohlcv/coinbase_smoothbrainquant/coinbase_top200_daily_*.csv.gz, "
        "coinbase_missing_symbols_*.csv.gz",
    ),
    "binance_spot_cryptodatadownload": (
        "andrewsiah/crypto-historical-data",
        "bcf8fc9e37a302ec94da12d9ac4907644fb1e0c9",
        "hourly_ohlcv/binance_spot_cryptodatadownload_andrewsiah/Binance_{BTC,ETH}USDT_1h.csv.gz",
    ),
    "cmc_monthly_smoothbrainquant": (
        "smoothbrainquant/trading-for-new-dads",
        "ca5c8252b300529d173259b29764cf6e926d77a5",
        "market_cap_and_metadata/smoothbrainquant/coinmarketcap_monthly_all_snapshots.csv.gz",
    ),
    "cmc_yearly_smoothbrainquant": (
        "smoothbrainquant/trading-for-new-dads",
        "ca5c8252b300529d173259b29764cf6e926d77a5",
        "market_cap_and_metadata/smoothbrainquant/coinmarketcap_historical_all_snapshots.csv",
    ),
    "token_metadata_smoothbrainquant": (
        "smoothbrainquant/trading-for-new-dads",
        "ca5c8252b300529d173259b29764cf6e926d77a5",
        "market_cap_and_metadata/smoothbrainquant/{coingecko_market_data_20251103.csv, "
        "crypto_marketcap_latest.csv, custom_categories.csv, category_mappings_validated.csv}"
        " (metadata only)",
    ),
    "defillama_chain_tvl_pairie_koh": (
        "pairie-koh/Wrapped-Stablecoins-and-DeFi-Risk-Dataset",
        "77c0b51bebf56a7892ca1ecf76e43bf982249651",
        "ecosystem/defillama_gas_stablecoins_pairie_koh/chain_tvl_historical_long.csv",
    ),
    "explorer_gas_pairie_koh": (
        "pairie-koh/Wrapped-Stablecoins-and-DeFi-Risk-Dataset",
        "77c0b51bebf56a7892ca1ecf76e43bf982249651",
        "ecosystem/defillama_gas_stablecoins_pairie_koh/*_gas_*_raw.csv",
    ),
    "defillama_stablecoins_pairie_koh": (
        "pairie-koh/Wrapped-Stablecoins-and-DeFi-Risk-Dataset",
        "77c0b51bebf56a7892ca1ecf76e43bf982249651",
        "ecosystem/defillama_gas_stablecoins_pairie_koh/stablecoin_supplies_all.csv.gz",
    ),
    "defillama_staking_snapshot_smoothbrainquant": (
        "smoothbrainquant/trading-for-new-dads",
        "ca5c8252b300529d173259b29764cf6e926d77a5",
        "ecosystem/smoothbrainquant_derivatives_defi/defillama_{tvl,yields}_20251103.csv.gz"
        " (staking snapshot)",
    ),
    "etherscan_chc_thesis": (
        "0xkrabbypatty/CHC-Thesis",
        "f9a63224dec2ee39f80b6b0e72b5a60743569b7d",
        "ecosystem/etherscan_exports/export-{TxGrowth,AddressCount,NetworkUtilization}.csv",
    ),
    "etherscan_proof_of_friendship": (
        "RengaprasadSK/ProofOfFriendship",
        "b1dc439f0dbc4edecee80db32348b38e1b60e5cb",
        "ecosystem/etherscan_exports/export-DailyActiveEthAddress.csv",
    ),
}

# --------------------------------------------------------------------------------------
# Symbol reconciliation
# --------------------------------------------------------------------------------------
# Ticker renames applied to every source: old ticker -> canonical token (1:1 swaps only).
RENAMES: dict[str, tuple[str, str]] = {
    "MATIC": ("POL", "MATIC→POL 1:1 migration (Sept 2024); MATIC history belongs to POL"),
    "RNDR": ("RENDER", "RNDR→RENDER ticker change (Solana migration, 1:1, July 2024)"),
    "FTM": ("S", "Fantom FTM→Sonic S 1:1 swap (Jan 2025); CMC lists 'Sonic (prev. FTM)'"),
    "LUNA2": ("LUNA", "Binance perp LUNA2USDT = Terra 2.0 (CMC symbol LUNA)"),
    "RAYSOL": ("RAY", "Binance perp RAYSOLUSDT = Raydium (CMC symbol RAY)"),
    "MIOTA": ("IOTA", "CMC ticker MIOTA→IOTA (same asset 'IOTA')"),
    "UST": ("USTC", "TerraUSD UST renamed USTC after the 2022 collapse"),
    "PAX": ("USDP", "Paxos Standard PAX→USDP (same asset)"),
    "NANO": ("XNO", "Nano ticker NANO→XNO"),
    "XZC": ("FIRO", "Zcoin XZC→Firo FIRO"),
    "XDCE": ("XDC", "XinFin XDCE→XDC"),
    "STRAT": ("STRAX", "Stratis STRAT→STRAX 1:1 swap"),
    "GNT": ("GLM", "Golem GNT→GLM 1:1 migration"),
    "BTMX": ("ASD", "BitMax BTMX→AscendEX ASD"),
    "AGI": ("AGIX", "SingularityNET AGI→AGIX 1:1 migration"),
}
# Terra: before the 2022-05-28 relaunch CMC's 'LUNA' is today's Terra Classic (LUNC).
LUNA_RELAUNCH = pd.Timestamp("2022-05-28")
NOT_RECONCILED = (
    "LEND→AAVE (100:1) and ERD→EGLD (1000:1) are redenominations, kept as separate symbols; "
    "EOS and A (Vaulta) are kept apart (both trade in this data); KNC covers Kyber v1+v2; "
    "BTT mixes BitTorrent old/new (1000:1 redenomination 2022) under one CMC symbol."
)
# Contract prefixes on Binance perps: quoted per N tokens.
MULTIPLIER_PREFIX = re.compile(r"^(1000000|1000|1M)(?=[A-Z])")
PREFIX_VALUE = {"1000000": 1_000_000.0, "1000": 1_000.0, "1M": 1_000_000.0}

STABLECOINS = frozenset(
    {
        "USDT", "USDC", "FDUSD", "USD1", "DAI", "TUSD", "USDE", "PYUSD", "BUSD", "USDP",
        "USDS", "GUSD", "FRAX", "LUSD", "USDD", "USDX", "RLUSD", "USDTB", "USDF", "USD0",
        "BFUSD", "SUSD", "EURC", "EURT", "EURI", "AEUR", "XUSD", "USDB", "CUSD", "MIM",
    }
)  # fmt: skip
NOT_STABLE_NOTES = {
    "USTC": "former algorithmic stablecoin, depegged May 2022 (is_stablecoin=False)",
    "PAXG": "gold-backed token, not a stablecoin",
    "XAUT": "gold-backed token, not a stablecoin",
}
# Perp contracts that are not a single token (index) or are stablecoin-quoted/based.
PERP_EXCLUDE = frozenset({"BTCDOMUSDT", "DEFIUSDT", "FOOTBALLUSDT", "BLUEBIRDUSDT"})
PERP_MIN_ROWS = 180  # ≥ ~6 months of daily candles up to the cut-off
PERP_MIN_MEDIAN_QUOTE_VOLUME = 10_000_000.0  # USDT per day
COINBASE_MIN_ROWS = 180
HOURLY_MARKETLAB_MAJORS = (
    "BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "LTC", "TRX", "BCH",
    "SUI", "PEPE", "UNI", "NEAR", "AAVE",
)  # fmt: skip
STABLE_METRIC_TOP_PEAK = 10
STABLE_METRIC_MIN_LATEST = 1e9
STABLE_NAME_MAP = {"SKY DOLLAR": "USDS"}
# DefiLlama protocol categories whose yield pools are staking yields (LST, LRT, staking pools)
STAKING_CATEGORIES = {"Liquid Staking", "Liquid Restaking", "Restaking", "Staking Pool"}
STAKING_MIN_TVL = 10e6  # pools below $10M are left out (hundreds of thin duplicates)
STAKING_SNAPSHOT = pd.Timestamp("2025-11-03")


def canon(ticker: str) -> str:
    t = ticker.strip().upper()
    return RENAMES[t][0] if t in RENAMES else t


# --------------------------------------------------------------------------------------
# Build report
# --------------------------------------------------------------------------------------
@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    reconciliation: dict[str, str] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)

    def log(self, msg: str) -> None:
        self.lines.append(msg)
        print(msg)


R = Report()


# --------------------------------------------------------------------------------------
# Candles
# --------------------------------------------------------------------------------------
CANDLE_COLS = ["market_key", "open_time", "open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class Market:
    market_key: str
    symbol: str
    exchange: str
    pair: str
    quote: str
    instrument: str
    contract_multiplier: float


def validate(df: pd.DataFrame, label: str) -> pd.DataFrame:
    """Drop rows that cannot be a real candle; count each reason; cut at the cut-off."""
    n0 = len(df)
    px = df[["open", "high", "low", "close"]]
    checks: list[tuple[str, pd.Series]] = [
        ("NaN price/volume/time", px.isna().any(axis=1) | df["volume"].isna()
         | df["open_time"].isna()),
        ("non-positive price", (px <= 0).any(axis=1)),
        ("high < low", df["high"] < df["low"]),
        ("open/close outside [low, high]", (df[["open", "close"]].max(axis=1) > df["high"])
         | (df[["open", "close"]].min(axis=1) < df["low"])),
        ("negative volume", df["volume"] < 0),
        ("after cut-off 2025-09-30", df["open_time"] >= CUTOFF_END),
    ]  # fmt: skip
    bad = pd.Series(False, index=df.index)
    for reason, mask in checks:
        mask = mask.fillna(False) & ~bad
        if mask.any():
            R.dropped[f"{label}: {reason}"] += int(mask.sum())
        bad |= mask
    df = df[~bad]
    dups = df.duplicated(["market_key", "open_time"], keep="first")
    if dups.any():
        R.dropped[f"{label}: duplicate (market_key, open_time)"] += int(dups.sum())
        df = df[~dups]
    R.log(f"  {label}: {n0} rows read, {len(df)} kept")
    return df


def read_csv(path: Path, **kw: Any) -> pd.DataFrame:
    frame: pd.DataFrame = pd.read_csv(path, **kw)
    return frame


def utc(series: pd.Series, **kw: Any) -> pd.Series:
    parsed: pd.Series = pd.to_datetime(series, utc=True, **kw)
    return parsed.astype("datetime64[us, UTC]")


def spot_market(ticker: str, source_pair: str | None = None) -> Market:
    pair = source_pair or f"{ticker}USDT"
    return Market(f"binance:spot:{pair}", canon(ticker), "binance", pair, "USDT", "spot", 1.0)


def load_yanniedog(src: Path, interval: str) -> tuple[pd.DataFrame, dict[str, Market]]:
    folder = (
        src / ("daily_ohlcv" if interval == "1d" else "hourly_ohlcv") / "binance_spot_yanniedog"
    )
    frames, markets = [], {}
    for f in sorted(folder.glob(f"*USDT_{interval}.csv.gz")):
        ticker = f.name.split("USDT_")[0]
        m = spot_market(ticker)
        df = read_csv(f)
        df["open_time"] = utc(df["timestamp"])
        df["market_key"] = m.market_key
        frames.append(df[CANDLE_COLS])
        markets[m.market_key] = m
    return pd.concat(frames, ignore_index=True), markets


def load_marketlab(
    src: Path, interval: str, only: Iterable[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Market]]:
    folder = (
        src / ("daily_ohlcv" if interval == "1d" else "hourly_ohlcv") / "binance_spot_marketlab"
    )
    keep = set(only) if only is not None else None
    frames, markets = [], {}
    for f in sorted(folder.glob(f"*_USDT-{interval}.csv.gz")):
        ticker = f.name.split("_USDT-")[0]
        if keep is not None and ticker not in keep:
            continue
        m = spot_market(ticker)
        df = read_csv(f)
        df["open_time"] = utc(df["date"])
        df["market_key"] = m.market_key
        frames.append(df[CANDLE_COLS])
        markets[m.market_key] = m
    return pd.concat(frames, ignore_index=True), markets


def compare_overlap(a: pd.DataFrame, b: pd.DataFrame, label: str) -> None:
    j = a.merge(b, on=["market_key", "open_time"], suffixes=("_a", "_b"))
    if j.empty:
        R.checks.append(f"{label}: no overlapping candles")
        return
    rel = (j["close_a"] / j["close_b"] - 1).abs()
    vol = (j["volume_a"] / j["volume_b"].where(j["volume_b"] > 0) - 1).abs()
    msg = (
        f"{label}: {len(j)} overlapping candles in {j['market_key'].nunique()} markets; "
        f"max |close diff| {rel.max():.2e}, max |volume diff| {vol.max():.2e}"
    )
    R.checks.append(msg)
    R.log("  check " + msg)


def merge_priority(primary: pd.DataFrame, secondary: pd.DataFrame) -> pd.DataFrame:
    """Rows of `secondary` only where `primary` has no candle for that key/time."""
    key = ["market_key", "open_time"]
    idx = pd.MultiIndex.from_frame(secondary[key]).isin(pd.MultiIndex.from_frame(primary[key]))
    return pd.concat([primary, secondary[~idx]], ignore_index=True)


def load_perps(src: Path) -> tuple[pd.DataFrame, dict[str, Market], list[str]]:
    f = src / "daily_ohlcv/binance_usdm_perp_gravestone/binance_usdm_perp_1d.csv.gz"
    df = read_csv(f)
    df["open_time"] = utc(df["timestamp"], unit="ms")
    df = df[df["open_time"] < CUTOFF_END]
    stats = df.groupby("symbol").agg(n=("open_time", "size"), med=("quote_volume", "median"))
    universe = sorted(stats.index)
    chosen: list[str] = []
    excluded: Counter[str] = Counter()
    markets: dict[str, Market] = {}
    for sym in universe:
        if sym in PERP_EXCLUDE:
            excluded["index/odd contract"] += 1
            continue
        if not sym.endswith("USDT"):
            excluded["not USDT-margined"] += 1
            continue
        raw = sym[: -len("USDT")]
        mult = 1.0
        m = MULTIPLIER_PREFIX.match(raw)
        if m:
            mult = PREFIX_VALUE[m.group(1)]
            raw = raw[m.end() :]
        base = canon(raw)
        if base in STABLECOINS:
            excluded["stablecoin base"] += 1
            continue
        n, med = stats.loc[sym, "n"], stats.loc[sym, "med"]
        if n < PERP_MIN_ROWS or med < PERP_MIN_MEDIAN_QUOTE_VOLUME:
            excluded["illiquid or short (<180 days or median quote volume < $10M)"] += 1
            continue
        chosen.append(sym)
        markets[f"binance:perp:{sym}"] = Market(
            f"binance:perp:{sym}", base, "binance", sym, "USDT", "perp", mult
        )
        if mult != 1.0:
            R.reconciliation[f"binance:perp:{sym}"] = f"→ {base}, contract_multiplier {mult:g}"
        elif raw != base:
            R.reconciliation[f"binance:perp:{sym}"] = f"→ {base} ({RENAMES[raw][1]})"
    R.log(
        f"  perp universe {len(universe)} symbols → {len(chosen)} kept; excluded "
        + ", ".join(f"{k}: {v}" for k, v in sorted(excluded.items()))
    )
    df = df[df["symbol"].isin(chosen)].copy()
    df["market_key"] = "binance:perp:" + df["symbol"]
    df["trades"] = df["trades"].astype("Int64")
    return df[[*CANDLE_COLS, "quote_volume", "trades"]], markets, chosen


def load_coinbase(src: Path) -> tuple[pd.DataFrame, dict[str, Market]]:
    folder = src / "daily_ohlcv/coinbase_smoothbrainquant"
    files = sorted(folder.glob("coinbase_top200_daily_*.csv.gz")) + sorted(
        folder.glob("coinbase_missing_symbols_*.csv.gz")
    )
    df = pd.concat([read_csv(f) for f in files], ignore_index=True)
    base_, quote_ = df["symbol"].str.split("/", n=1).str[0], df["symbol"].str.split("/").str[1]
    n_other = int((quote_ != "USD").sum())
    if n_other:
        R.dropped["coinbase 1d: quote is not USD (e.g. EURC/USDC)"] += n_other
    df = df[quote_ == "USD"].copy()
    df["base"] = base_[quote_ == "USD"]
    df["open_time"] = utc(df["date"])
    df = df[df["open_time"] < CUTOFF_END]
    counts = df.groupby("base").size()
    keep = sorted(counts[counts >= COINBASE_MIN_ROWS].index)
    R.log(
        f"  coinbase bases {len(counts)} → {len(keep)} with ≥{COINBASE_MIN_ROWS} rows "
        f"(dropped: {' '.join(sorted(set(counts.index) - set(keep)))})"
    )
    df = df[df["base"].isin(keep)]
    df["market_key"] = "coinbase:spot:" + df["base"] + "-USD"
    markets = {}
    for b in keep:
        key = f"coinbase:spot:{b}-USD"
        markets[key] = Market(key, canon(b), "coinbase", f"{b}-USD", "USD", "spot", 1.0)
        if canon(b) != b:
            R.reconciliation[key] = f"→ {canon(b)} ({RENAMES[b][1]})"
    return df[CANDLE_COLS], markets


def load_cryptodatadownload(src: Path) -> tuple[pd.DataFrame, dict[str, Market]]:
    folder = src / "hourly_ohlcv/binance_spot_cryptodatadownload_andrewsiah"
    frames, markets = [], {}
    for ticker in ("BTC", "ETH"):
        df = read_csv(folder / f"Binance_{ticker}USDT_1h.csv.gz", dtype={"tradecount": "string"})
        unix = pd.to_numeric(df["unix"])
        ms = np.where(unix > 1e11, unix, unix * 1000).astype("int64")  # mixed s / ms epochs
        df["open_time"] = utc(pd.Series(ms), unit="ms")
        m = spot_market(ticker)
        df["market_key"] = m.market_key
        df["volume"] = df[f"Volume {ticker}"]
        df["quote_volume"] = df["Volume USDT"].astype("float64")
        tc = df["tradecount"].replace("NULL", pd.NA)
        df["trades"] = pd.to_numeric(tc).astype("Int64")
        # Known CryptoDataDownload artefact: isolated hourly spikes (e.g. the first BTC hour
        # 2017-08-17 04:00 opens at 16,199.91 while Binance's opening print was ~4,261).
        # The export holds 2020-08-01 23:00 → 2020-11-20 07:00 twice: rows with a seconds
        # epoch (rounded values, tradecount NULL) and rows with a ms epoch (full precision).
        # Keep the ms rows.
        df["_secs"] = (unix <= 1e11).astype(int)
        df = df.sort_values(["open_time", "_secs"], kind="stable")
        twice = df.duplicated("open_time", keep="first")
        R.dropped[f"cryptodatadownload {ticker} 1h: hour listed twice (s-epoch copy)"] += int(
            twice.sum()
        )
        df = df[~twice]
        spike = (df["high"] / df["low"] > 2.0) | (df["open"] / df["close"]).sub(1).abs().gt(1.0)
        if spike.any():
            R.dropped[f"cryptodatadownload {ticker} 1h: intra-hour range >2x (artefact)"] += int(
                spike.sum()
            )
            df = df[~spike]
        frames.append(df[[*CANDLE_COLS, "quote_volume", "trades"]])
        markets[m.market_key] = m
    return pd.concat(frames, ignore_index=True), markets


def add_missing(df: pd.DataFrame) -> pd.DataFrame:
    if "quote_volume" not in df:
        df["quote_volume"] = np.nan
    if "trades" not in df:
        df["trades"] = pd.array([pd.NA] * len(df), dtype="Int64")
    return df


def gap_report(df: pd.DataFrame, freq: str, label: str) -> dict[str, int]:
    step = pd.Timedelta(freq)
    gaps: dict[str, int] = {}
    for key, g in df.groupby("market_key", sort=True):
        t = g["open_time"].sort_values()
        steps = t.diff().dt.total_seconds().dropna() / step.total_seconds()
        missing = int((steps - 1).clip(lower=0).sum())
        if missing:
            gaps[str(key)] = missing
    total = sum(gaps.values())
    R.log(f"  {label}: {len(gaps)} markets with gaps, {total} missing {freq} candles in total")
    return gaps


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------
def to_table(df: pd.DataFrame, name: str) -> pa.Table:
    schema = SCHEMAS[name]
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def write(table: pa.Table, out: Path, name: str) -> Path:
    path = out / f"{name}.parquet"
    # Strings: dictionary. Integers/times/dates: delta. Floats: plain (zstd does the rest);
    # measured smallest for these prices (BYTE_STREAM_SPLIT and float dictionaries are larger).
    delta = {
        f.name: "DELTA_BINARY_PACKED"
        for f in table.schema
        if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)
    }
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=[f.name for f in table.schema if pa.types.is_string(f.type)],
        column_encoding=delta or None,
        row_group_size=1_000_000,
        write_statistics=True,
        store_schema=False,
    )
    return path


def build_candles(
    src: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Market], dict[str, Any]]:
    markets: dict[str, Market] = {}
    sources: dict[str, set[str]] = defaultdict(set)

    def register(ms: dict[str, Market], source: str) -> None:
        for k, m in ms.items():
            prev = markets.setdefault(k, m)
            if prev != m:
                raise SystemExit(f"conflicting market definitions for {k}: {prev} vs {m}")
            sources[k].add(source)

    R.log("daily candles")
    y1d, ms = load_yanniedog(src, "1d")
    register(ms, "binance_spot_yanniedog")
    y1d = validate(add_missing(y1d), "binance_spot_yanniedog 1d")
    m1d, ms = load_marketlab(src, "1d")
    register(ms, "binance_spot_marketlab")
    m1d = validate(add_missing(m1d), "binance_spot_marketlab 1d")
    compare_overlap(y1d, m1d, "binance spot 1d yanniedog vs marketlab")
    spot1d = merge_priority(y1d, m1d)
    p1d, ms, _ = load_perps(src)
    register(ms, "binance_usdm_perp_gravestone")
    p1d = validate(p1d, "binance_usdm_perp_gravestone 1d")
    c1d, ms = load_coinbase(src)
    register(ms, "coinbase_smoothbrainquant")
    c1d = validate(add_missing(c1d), "coinbase_smoothbrainquant 1d")
    d1 = pd.concat([spot1d, p1d, c1d], ignore_index=True)

    R.log("hourly candles")
    cdd, ms = load_cryptodatadownload(src)
    register(ms, "binance_spot_cryptodatadownload")
    cdd = validate(cdd, "binance_spot_cryptodatadownload 1h")
    y1h, ms = load_yanniedog(src, "1h")
    register(ms, "binance_spot_yanniedog")
    y1h = validate(add_missing(y1h), "binance_spot_yanniedog 1h")
    m1h, ms = load_marketlab(src, "1h", HOURLY_MARKETLAB_MAJORS)
    register(ms, "binance_spot_marketlab")
    m1h = validate(add_missing(m1h), "binance_spot_marketlab 1h (majors)")
    compare_overlap(y1h, m1h, "binance spot 1h yanniedog vs marketlab")
    compare_overlap(cdd, m1h, "binance spot 1h cryptodatadownload vs marketlab")
    h1 = merge_priority(merge_priority(y1h, cdd), m1h)

    # Daily vs hourly consistency for BTC: sum of hourly volume ≈ daily volume.
    for name, frame in (("1d", d1), ("1h", h1)):
        frame.sort_values(["market_key", "open_time"], inplace=True, ignore_index=True)
        dups = frame.duplicated(["market_key", "open_time"]).sum()
        if dups:
            raise SystemExit(f"duplicate candles in {name}")
    btc_h = h1[h1["market_key"] == "binance:spot:BTCUSDT"].copy()
    btc_h["day"] = btc_h["open_time"].dt.floor("D")
    agg = btc_h.groupby("day").agg(
        n=("close", "size"), vol=("volume", "sum"), last=("close", "last")
    )
    agg = agg[agg["n"] == 24]
    btc_d = d1[d1["market_key"] == "binance:spot:BTCUSDT"].set_index("open_time")
    j = agg.join(btc_d[["close", "volume"]], how="inner")
    R.checks.append(
        f"BTC hourly→daily on {len(j)} complete days: max |close diff| "
        f"{(j['last'] / j['close'] - 1).abs().max():.2e}, median |volume diff| "
        f"{(j['vol'] / j['volume'] - 1).abs().median():.2e}"
    )
    R.log("  check " + R.checks[-1])
    info = {
        "gaps_1d": gap_report(d1, "1D", "candles_1d"),
        "gaps_1h": gap_report(h1, "1h", "candles_1h"),
        "sources": sources,
    }
    # Markets used only hourly or only daily are still one market; keep those with candles.
    used = set(d1["market_key"]) | set(h1["market_key"])
    markets = {k: v for k, v in markets.items() if k in used}
    return d1, h1, markets, info


def markets_frame(markets: dict[str, Market], sources: dict[str, set[str]]) -> pd.DataFrame:
    rows = []
    for k in sorted(markets):
        m = markets[k]
        rows.append({**m.__dict__, "source": ",".join(sorted(sources[k]))})
        if m.instrument == "spot" and m.exchange == "binance":
            base = m.pair[: -len("USDT")]
            if canon(base) != base:
                R.reconciliation[k] = f"→ {m.symbol} ({RENAMES[base][1]})"
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------
def build_tokens(src: Path, symbols: set[str], cmc_names: dict[str, str]) -> pd.DataFrame:
    meta = src / "market_cap_and_metadata/smoothbrainquant"
    cg = read_csv(meta / "coingecko_market_data_20251103.csv")
    cg["symbol"] = cg["symbol"].map(canon)
    cg = cg.drop_duplicates("symbol", keep="first").set_index("symbol")
    latest = read_csv(meta / "crypto_marketcap_latest.csv")
    latest["symbol"] = latest["symbol"].map(canon)
    latest = latest.sort_values("cmc_rank").drop_duplicates("symbol").set_index("symbol")
    cats = pd.concat(
        [
            read_csv(meta / "custom_categories.csv").assign(order=0),
            read_csv(meta / "category_mappings_validated.csv").assign(order=1),
        ],
        ignore_index=True,
    )
    cats["symbol"] = cats["symbol"].map(canon)
    cats = cats.drop_duplicates(["symbol", "category"], keep="first")
    by_sym: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for sym_, prio_, order_, cat_ in zip(
        cats["symbol"], cats["priority"], cats["order"], cats["category"], strict=True
    ):
        by_sym[str(sym_)].append((0 if prio_ == "primary" else 1, int(order_), str(cat_)))
    rename_notes: dict[str, list[str]] = defaultdict(list)
    for old, (new, why) in sorted(RENAMES.items()):
        rename_notes[new].append(f"{why} (ticker {old})")

    cg_rows: dict[str, dict[Any, Any]] = {str(k): v for k, v in cg.to_dict("index").items()}
    latest_rows: dict[str, dict[Any, Any]] = {str(k): v for k, v in latest.to_dict("index").items()}

    def num(sym: str, col: str) -> float | None:
        value = cg_rows.get(sym, {}).get(col)
        return None if value is None or pd.isna(value) else float(value)

    rows = []
    for sym in sorted(symbols):
        name = None
        for rows_by_symbol in (latest_rows, cg_rows):
            value = rows_by_symbol.get(sym, {}).get("name")
            if isinstance(value, str) and value:
                name = value
                break
        name = name or cmc_names.get(sym)
        ranked = sorted(by_sym.get(sym, []))
        categories = [c for _, _, c in ranked]
        sector = ranked[0][2] if ranked and ranked[0][0] == 0 else None
        notes = list(rename_notes.get(sym, []))
        if sym in NOT_STABLE_NOTES:
            notes.append(NOT_STABLE_NOTES[sym])
        if name is None:
            notes.append("no name in the metadata snapshots")
        rows.append(
            {
                "symbol": sym,
                "name": name,
                "sector": sector,
                "categories": json.dumps(categories, ensure_ascii=False),
                "coingecko_id": str(cg_rows[sym]["id"]) if sym in cg_rows else None,
                "circulating_supply": num(sym, "circulating_supply"),
                "total_supply": num(sym, "total_supply"),
                "max_supply": num(sym, "max_supply"),
                "is_stablecoin": sym in STABLECOINS,
                "notes": "; ".join(notes) if notes else None,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Market caps
# --------------------------------------------------------------------------------------
def build_market_caps(src: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    meta = src / "market_cap_and_metadata/smoothbrainquant"
    parts = [
        read_csv(meta / "coinmarketcap_monthly_all_snapshots.csv.gz").assign(
            source="cmc_monthly_smoothbrainquant", prio=0
        ),
        read_csv(meta / "coinmarketcap_historical_all_snapshots.csv").assign(
            source="cmc_yearly_smoothbrainquant", prio=1
        ),
    ]
    df = pd.concat(parts, ignore_index=True)
    n0 = len(df)
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"].astype(str), format="%Y%m%d")
    late = df["snapshot_date"] > CUTOFF_DAY
    R.dropped["market_caps: snapshot after 2025-09-30"] += int(late.sum())
    df = df[~late].copy()
    raw = df["Symbol"].astype(str).str.strip().str.upper()
    terra = (raw == "LUNA") & (df["snapshot_date"] < LUNA_RELAUNCH)
    df["symbol"] = raw.map(canon)
    df.loc[terra, "symbol"] = "LUNC"
    R.reconciliation["CMC LUNA before 2022-05-28"] = "→ LUNC (Terra Classic)"
    for old, (new, _) in sorted(RENAMES.items()):
        hits = int((raw == old).sum())
        if hits:
            R.reconciliation[f"CMC {old}"] = f"→ {new} ({hits} snapshot rows)"
    # One row per (symbol, date): monthly beats yearly (2023-01-01 is in both); where a
    # canonical symbol appears twice (e.g. MATIC and POL listed side by side, or two
    # different coins sharing a ticker) keep the row whose own ticker is canonical, then
    # the better rank.
    df["renamed"] = (raw != df["symbol"]).astype(int)
    df = df.sort_values(["symbol", "snapshot_date", "prio", "renamed", "Rank"])
    dup = df.duplicated(["symbol", "snapshot_date"], keep="first")
    R.dropped["market_caps: duplicate (symbol, snapshot_date) – monthly/yearly overlap or "
              "ticker clash"] += int(dup.sum())  # fmt: skip
    df = df[~dup]
    last_names = df.sort_values("snapshot_date").groupby("symbol")["Name"].last()
    names = {str(k): str(v) for k, v in last_names.items()}
    out = pd.DataFrame(
        {
            "symbol": df["symbol"],
            "snapshot_date": df["snapshot_date"].dt.date,
            "rank": df["Rank"].astype("int64"),
            "market_cap": df["Market Cap"].astype("float64"),
            "price": df["Price"].astype("float64"),
            "circulating_supply": df["Circulating Supply"].astype("float64"),
            "volume_24h": df["Volume (24h)"].astype("float64"),
            "source": df["source"],
        }
    ).sort_values(["snapshot_date", "rank", "symbol"], ignore_index=True)
    R.log(f"market_caps: {n0} rows read, {len(out)} kept")
    return out, names


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------
def etherscan(path: Path, value_col: str = "Value") -> pd.DataFrame:
    df = read_csv(path, dtype=str)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(df["Date(UTC)"], format="%m/%d/%Y"),
            "value": pd.to_numeric(df[value_col], errors="coerce"),
        }
    )


def build_metrics(src: Path) -> pd.DataFrame:
    eco = src / "ecosystem"
    pk = eco / "defillama_gas_stablecoins_pairie_koh"
    parts: list[pd.DataFrame] = []

    def add(df: pd.DataFrame, entity: str, metric: str, unit: str, source: str) -> None:
        parts.append(df.assign(entity=entity, metric=metric, unit=unit, source=source))

    tvl = read_csv(pk / "chain_tvl_historical_long.csv")
    tvl["date"] = pd.to_datetime(tvl["date"])
    for chain, g in tvl.groupby("chain", sort=True):
        add(
            g[["date"]].assign(value=pd.to_numeric(g["tvl"], errors="coerce")),
            str(chain).strip().lower(), "tvl_usd", "USD", "defillama_chain_tvl_pairie_koh",
        )  # fmt: skip
    gas_files = {
        "ethereum": "ethereum_gas_fees_etherscan_raw.csv",
        "arbitrum": "arbitrum_gas_fees_arbriscan_raw.csv",
        "optimism": "optimism_gas_price_etherscan_raw.csv",
        "polygon": "polygon_gas_fees_polyscan_raw.csv",
    }
    for chain, fname in gas_files.items():
        g = etherscan(pk / fname, "Value (Wei)")
        zero = g["value"] <= 0
        R.dropped[f"metrics gas {chain}: zero/negative daily gas price (no data)"] += int(
            zero.sum()
        )
        g = g[~zero].assign(value=lambda d: d["value"] / 1e9)
        add(g, chain, "gas_price_gwei", "gwei", "explorer_gas_pairie_koh")

    st = read_csv(pk / "stablecoin_supplies_all.csv.gz")
    st["date"] = pd.to_datetime(st["Date"])
    coins = st.drop(columns=["Timestamp", "Date", "date"]).apply(pd.to_numeric, errors="coerce")
    total = coins.sum(axis=1, min_count=1)
    add(pd.DataFrame({"date": st["date"], "value": total}), "all_stablecoins", "supply_usd",
        "USD", "defillama_stablecoins_pairie_koh")  # fmt: skip
    peak = coins.max().sort_values(ascending=False, kind="stable")
    last = coins.ffill().iloc[-1]
    chosen = list(peak.index[:STABLE_METRIC_TOP_PEAK]) + sorted(
        c
        for c in last.index[last >= STABLE_METRIC_MIN_LATEST]
        if c not in peak.index[:STABLE_METRIC_TOP_PEAK]
    )
    entities = []
    for col in chosen:
        ent = STABLE_NAME_MAP.get(col.upper(), col.upper())
        entities.append(ent)
        add(pd.DataFrame({"date": st["date"], "value": coins[col]}), ent, "supply_usd", "USD",
            "defillama_stablecoins_pairie_koh")  # fmt: skip
    R.log(f"  stablecoin supply entities: {', '.join(entities)} + all_stablecoins")

    ee = eco / "etherscan_exports"
    add(
        etherscan(ee / "export-TxGrowth.csv"),
        "ethereum",
        "tx_count",
        "count",
        "etherscan_chc_thesis",
    )
    add(etherscan(ee / "export-AddressCount.csv"), "ethereum", "unique_addresses_total", "count",
        "etherscan_chc_thesis")  # fmt: skip
    add(etherscan(ee / "export-NetworkUtilization.csv"), "ethereum", "network_utilization",
        "ratio", "etherscan_chc_thesis")  # fmt: skip
    add(etherscan(ee / "export-DailyActiveEthAddress.csv", "Unique Address Total Count"),
        "ethereum", "active_addresses", "count", "etherscan_proof_of_friendship")  # fmt: skip

    df = pd.concat(parts, ignore_index=True)
    n0 = len(df)
    nan = df["value"].isna()
    R.dropped["metrics: empty value"] += int(nan.sum())
    df = df[~nan]
    late = df["date"] > CUTOFF_DAY
    R.dropped["metrics: after 2025-09-30"] += int(late.sum())
    df = df[~late]
    dup = df.duplicated(["entity", "metric", "date"])
    R.dropped["metrics: duplicate (entity, metric, date)"] += int(dup.sum())
    df = pd.concat([df[~dup], staking_snapshot(src)], ignore_index=True)
    df["date"] = df["date"].dt.date
    df = df.sort_values(["metric", "entity", "date"], ignore_index=True)
    R.log(f"metrics: {n0} values read, {len(df)} kept")
    return df


def staking_snapshot(src: Path) -> pd.DataFrame:
    """Staking yields (`lst_apr`, %) and pool TVL (`lst_tvl_usd`) of the liquid-staking,
    restaking and staking-pool protocols' single-asset pools with ≥ $10M, from DefiLlama's
    2025-11-03 snapshot: one dated snapshot, after the time-series cut-off, that no
    computation for any day reads (it is only shown as the staking table, with its date)."""
    d = src / "ecosystem/smoothbrainquant_derivatives_defi"
    protocols = read_csv(d / "defillama_tvl_20251103.csv.gz")
    staking = set(protocols.loc[protocols["category"].isin(STAKING_CATEGORIES), "slug"])
    pools = read_csv(d / "defillama_yields_20251103.csv.gz")
    pools["tvl"] = pd.to_numeric(pools["tvl"], errors="coerce")
    pools["apy"] = pd.to_numeric(pools["apy"], errors="coerce")
    keep = (
        pools["project"].isin(staking)
        & (pools["exposure"] == "single")
        & (pools["tvl"] >= STAKING_MIN_TVL)
        & pools["apy"].notna()
    )
    R.dropped["metrics staking: pools of other protocols, multi-asset or < $10M"] += int(
        (~keep).sum()
    )
    chosen = pools[keep]
    entity = chosen["project"] + ":" + chosen["symbol"] + ":" + chosen["chain"].str.lower()
    source = "defillama_staking_snapshot_smoothbrainquant"
    parts = [
        pd.DataFrame({"entity": entity, "metric": metric, "value": chosen[col], "unit": unit})
        for metric, col, unit in (("lst_apr", "apy", "%"), ("lst_tvl_usd", "tvl", "USD"))
    ]
    out = pd.concat(parts, ignore_index=True).assign(date=STAKING_SNAPSHOT, source=source)
    R.log(f"  staking snapshot: {len(chosen)} pools of {chosen['project'].nunique()} protocols")
    return out[["date", "value", "entity", "metric", "unit", "source"]]


# --------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------
def md_table(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def span(df: pd.DataFrame, col: str) -> str:
    lo, hi = df[col].min(), df[col].max()
    fmt: Callable[[object], str] = lambda v: str(v)[:10]  # noqa: E731
    return f"{fmt(lo)} → {fmt(hi)}"


def write_provenance(
    out: Path, t: dict[str, pd.DataFrame], info: dict[str, Any], sizes: dict[str, int]
) -> None:
    d1, h1, mk, tok = t["candles_1d"], t["candles_1h"], t["markets"], t["tokens"]
    mc, me = t["market_caps"], t["metrics"]
    by_src = mk.assign(source=mk["source"].str.split(",")).explode("source")
    src_rows = []
    for sid, (repo, commit, path) in SOURCES.items():
        n = int((by_src["source"] == sid).sum())
        src_rows.append([f"`{sid}`", f"`{repo}`", f"`{commit}`", path, n or "–"])
    cov = []
    for name, frame in (("candles_1d", d1), ("candles_1h", h1)):
        g = frame.merge(mk[["market_key", "exchange", "instrument"]], on="market_key")
        for (ex, ins), gg in g.groupby(["exchange", "instrument"], sort=True):
            cov.append([name, ex, ins, gg["market_key"].nunique(), len(gg), span(gg, "open_time")])
    h1_markets = []
    for key, g in h1.groupby("market_key", sort=True):
        h1_markets.append(
            [f"`{key}`", len(g), span(g, "open_time"), info["gaps_1h"].get(str(key), 0)]
        )
    spot_core = d1[
        d1["market_key"].isin(mk.loc[mk["source"].str.contains("yanniedog"), "market_key"])
    ]
    core_rows = [
        [f"`{k}`", len(g), span(g, "open_time"), info["gaps_1d"].get(str(k), 0)]
        for k, g in spot_core.groupby("market_key", sort=True)
    ]
    met_rows = [
        [m, e, len(g), span(g, "date"), g["unit"].iloc[0], g["source"].iloc[0]]
        for (m, e), g in me.groupby(["metric", "entity"], sort=True)
    ]
    recon = md_table(["market / source symbol", "canonical"], sorted(R.reconciliation.items()))
    renames = md_table(
        ["old ticker", "canonical", "evidence"], [[o, n, w] for o, (n, w) in RENAMES.items()]
    )
    dropped = md_table(["reason", "rows"], sorted((k, v) for k, v in R.dropped.items() if v))
    gaps_1d = info["gaps_1d"]
    files_table = md_table(
        ["file", "rows", "bytes"], [[f"`{k}.parquet`", len(t[k]), sizes[k]] for k in sorted(sizes)]
    )
    sources_table = md_table(
        ["id (markets.source)", "repo", "commit", "files in ../shared/data", "markets"], src_rows
    )
    mc_symbols = mc["symbol"].nunique()
    text = f"""# Packaged dataset – provenance

Built by `scripts/build_dataset.py` from `../shared/data` (see `../shared/data/PROVENANCE.md`
for how those copies were taken). Real historical market data; nothing here is synthetic.
Rebuild: `.venv/bin/python scripts/build_dataset.py` (no network, deterministic output:
rows sorted, parquet zstd level {COMPRESSION_LEVEL}, no build timestamps in any file).

**Cut-off: every time series ends on 2025-09-30 UTC (inclusive).** Candles are kept only if
they *open* before 2025-10-01T00:00Z; market-cap snapshots and metric series only up to 2025-09-30
(the CMC 2025-10-01 snapshot is dropped). The snapshot files dated 2025-10-26 / 2025-11-03
feed only `tokens.parquet` metadata (name, CoinGecko id, supply figures as of 2025-11-03,
sectors) and the staking snapshot in `metrics.parquet` (`lst_*`, dated 2025-11-03, see
below), and **never** a historical computation. Do not multiply today's supply by historical
prices – use `market_caps.parquet` for historical market caps.

**Synthetic data: none.** Every row comes from the sources below. Synthetic panels exist only in
`bench/` and in tests, and are labelled there.

**Licence:** none of the source repositories has a LICENSE file (all rights reserved by default
for the repos' own content). The values are factual market data published by Binance, Coinbase,
CoinMarketCap, CoinGecko, DefiLlama and Etherscan/Arbiscan/Polygonscan; their terms apply. Treat
this as a demo/research dataset and attribute the providers.

## Files

{files_table}

Total: {sum(sizes.values()):,} bytes.

## Sources

{sources_table}

## `tokens.parquet` ({len(tok)} tokens, {int(tok["is_stablecoin"].sum())} stablecoins)

One row per canonical token that has at least one market. `name` from the CMC listing
2025-11-03 (`crypto_marketcap_latest.csv`), else CoinGecko 2025-11-03, else the latest CMC
monthly snapshot name; `coingecko_id`, `circulating_supply`, `total_supply`, `max_supply` from
`coingecko_market_data_20251103.csv` (as of 2025-11-03 – metadata only); `sector` = the
*primary* category from `custom_categories.csv` (then `category_mappings_validated.csv`);
`categories` = JSON list, primary first. `is_stablecoin` is an explicit list:
{", ".join(sorted(STABLECOINS))}. USTC, PAXG and XAUT are not stablecoins (see `notes`).
Tokens with a sector: {int(tok["sector"].notna().sum())}; with a CoinGecko id:
{int(tok["coingecko_id"].notna().sum())}; with a name: {int(tok["name"].notna().sum())}.

## `markets.parquet` ({len(mk)} markets)

`market_key` = `exchange:instrument:pair` with the pair as the venue spells it
(`binance:spot:MATICUSDT`, `binance:perp:1000PEPEUSDT`, `coinbase:spot:AAVE-USD`). `symbol` is
the canonical token. Prices in the candle files are per contract: divide by
`contract_multiplier` (1000 for `1000PEPEUSDT`, 1,000,000 for `1MBABYDOGEUSDT` /
`1000000MOGUSDT`, 1 otherwise). `source` lists every dataset id that contributed candles.

By exchange/instrument: {mk.groupby(["exchange", "instrument"]).size().to_dict()}

### Symbol reconciliation

Ticker renames (applied to every source; 1:1 swaps only):

{renames}

Applied in this build:

{recon}

Not reconciled on purpose: {NOT_RECONCILED}

## `candles_1d.parquet` / `candles_1h.parquet`

Columns: market_key, open_time (UTC candle **open**), open, high, low, close, volume (base units
per contract as quoted), quote_volume (only where the source has it: Binance perps, and
CryptoDataDownload's `Volume USDT`; otherwise null – never estimated), trades (perps,
CryptoDataDownload; null where the source lacks it or says `NULL`).

- Binance spot daily: 21 yanniedog series (2017→) merged with the 35 marketlab series on the
  same `binance:spot:XUSDT` key; yanniedog wins on overlap. {R.checks[0] if R.checks else ""}.
- Binance USDⓈ-M perps: of the symbols in the gravestone file, kept USDT-margined contracts
  with ≥ {PERP_MIN_ROWS} daily candles up to the cut-off **and** median daily quote volume ≥
  ${PERP_MIN_MEDIAN_QUOTE_VOLUME:,.0f}; dropped index/odd contracts
  ({", ".join(sorted(PERP_EXCLUDE))}) and stablecoin bases. The source keeps only the last 800
  candles per symbol, so perp history starts 2024-01-10 at the earliest.
- Coinbase daily: both files; `/USD` pairs only; a base is kept when it has ≥
  {COINBASE_MIN_ROWS} rows up to the cut-off. Many bases have only ~300-day windows (source quirk).
- Hourly: BTC/ETH from CryptoDataDownload (2017-08-17 → 2021-06-10; reversed order, mixed
  s/ms epochs and `NULL` tradecount handled) + marketlab (2024-09-14 →) – **gap 2021-06-10 →
  2024-09-14 for BTC/ETH hourly**; yanniedog hourly for SOL, XRP, BNB, DOGE, ADA (from
  listing); marketlab hourly for the majors {", ".join(HOURLY_MARKETLAB_MAJORS)} (yanniedog wins
  on overlap).
- Validation (rows dropped): NaN, non-positive price, high < low, open/close outside
  [low, high], negative volume, after the cut-off, duplicates (table below). For
  CryptoDataDownload only, hours with high/low > 2 or |open/close − 1| > 1 are dropped as
  export artefacts (e.g. BTC 2017-08-17 04:00 opening at 16,199.91).

Checks: {"; ".join(R.checks)}.

Coverage:

{md_table(["file", "exchange", "instrument", "markets", "rows", "range"], cov)}

Binance spot core daily series (yanniedog-backed; missing days in the last column):

{md_table(["market", "rows", "range", "missing days"], core_rows)}

Daily markets with calendar gaps: {len(gaps_1d)} ({sum(gaps_1d.values())} missing days in total;
mostly Coinbase's partial download windows).

Hourly markets:

{md_table(["market", "rows", "range", "missing hours"], h1_markets)}

## `market_caps.parquet` ({len(mc)} rows, {mc_symbols} symbols, {span(mc, "snapshot_date")})

CoinMarketCap top-200 snapshots: monthly (1st of each month) and yearly (early January), cut at
2025-09-30. Symbols mapped to canonical tickers (renames above; CMC `LUNA` before 2022-05-28 →
`LUNC`). One row per (symbol, snapshot_date): the monthly row wins over the yearly duplicate
(2023-01-01), the row whose own ticker is canonical wins over a renamed one (MATIC and POL
listed side by side 2024-10…2025-03), then the better rank (ticker clashes such as BNX).
Market-cap symbols need not be in `tokens.parquet`.

## `metrics.parquet` ({len(me)} values)

{md_table(["metric", "entity", "rows", "range", "unit", "source"], met_rows)}

`gas_price_gwei` = explorer "average daily gas price" in wei / 1e9 (days reporting 0 wei are
dropped as no-data). `supply_usd`: DefiLlama circulating supply in USD; entities are the
{STABLE_METRIC_TOP_PEAK} stablecoins with the largest peak supply plus any with ≥ $1B on the last
day (DefiLlama `Sky Dollar` → `USDS`); `all_stablecoins` is the sum of all ~280 stablecoin
columns in the file (includes non-USD stablecoins in USD terms). `unique_addresses_total` is
cumulative; `active_addresses` is the daily count of unique active addresses.
`lst_apr` (APY, %) and `lst_tvl_usd` are **one snapshot dated 2025-11-03**, after the
cut-off: DefiLlama's yield pools of the protocols it files as Liquid Staking, Liquid
Restaking, Restaking or Staking Pool, single-asset pools with ≥ $10M TVL; entity =
`project:SYMBOL:chain`. It is shown as the staking table with its date and feeds no
computation for any day.

## Rows dropped

{dropped}
"""
    (out / "PROVENANCE.md").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    ap.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "src/coinlens/connectors/dataset")
    args = ap.parse_args(argv)
    src: Path = args.source.resolve()
    out: Path = args.out.resolve()
    if not (src / "daily_ohlcv").is_dir():
        print(f"source folder {src} has no daily_ohlcv/ – nothing to build", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)

    d1, h1, markets, info = build_candles(src)
    mk = markets_frame(markets, info["sources"])
    mc, cmc_names = build_market_caps(src)
    tok = build_tokens(src, set(mk["symbol"]), cmc_names)
    R.log(f"tokens: {len(tok)}")
    me = build_metrics(src)

    frames = {
        "tokens": tok,
        "markets": mk,
        "candles_1d": d1,
        "candles_1h": h1,
        "market_caps": mc,
        "metrics": me,
    }
    sizes = {}
    for name, df in frames.items():
        path = write(to_table(df, name), out, name)
        sizes[name] = path.stat().st_size
    write_provenance(out, frames, info, sizes)

    print("\nsummary")
    for name in frames:
        print(f"  {name:12s} {len(frames[name]):>9,d} rows {sizes[name] / 1e6:8.2f} MB")
    print(f"  total        {sum(sizes.values()) / 1e6:8.2f} MB in {out}")
    by_instrument = mk.groupby("instrument").size().to_dict()
    by_exchange = mk.groupby("exchange").size().to_dict()
    print(f"  tokens {len(tok)}, markets {len(mk)} ({by_instrument}, {by_exchange})")
    print("  dropped rows:")
    for k, v in sorted(R.dropped.items()):
        if v:
            print(f"    {k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
