"""Known OHLCV file layouts, and how a file's header, name and options become markets.

A layout is a raw payload shape: which header columns identify it, which column holds the
candle open time, how the OHLCV fields are named, and what the source says about the venue.
`detect_layout` picks one from a header; `market_for` turns a (symbol, hints, layout) triple
into the domain's market identity. See docs/import.md for the user-facing description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from coinlens.domain.errors import Problem, ValidationFailed

TIMEFRAME_SECONDS: dict[str, int] = {"1h": 3_600, "1d": 86_400}
"""Supported candle timeframes and their length in seconds."""

QUOTES: tuple[str, ...] = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR")
"""Quote assets recognised at the end of a run-together pair like BTCUSDT (longest first)."""

TOKEN_ALIASES: dict[str, str] = {
    "MATIC": "POL",
    "RNDR": "RENDER",
    "FTM": "S",
    "LUNA2": "LUNA",
    "RAYSOL": "RAY",
    "MIOTA": "IOTA",
    "UST": "USTC",
    "PAX": "USDP",
    "NANO": "XNO",
    "XZC": "FIRO",
    "XDCE": "XDC",
    "STRAT": "STRAX",
    "GNT": "GLM",
    "BTMX": "ASD",
    "AGI": "AGIX",
}
"""Renamed tokens: the old ticker's history belongs to the new token. The 1:1 renames and
venue tickers the embedded dataset reconciles (dataset/PROVENANCE.md, "Symbol
reconciliation"), so imported and synced markets land on the same tokens as the loaded ones."""

PAIR_SEPARATORS: dict[str, str] = {"coinbase": "-"}
"""How a venue spells its pairs where it is not run-together: Coinbase products are `BTC-USD`
(as in the embedded dataset's `coinbase:spot:BTC-USD`)."""

_MULTIPLIER = re.compile(r"^(?P<mult>1000000|100000|10000|1000|100|1M)(?P<base>[A-Z][A-Z0-9]*)$")
_SEPARATED = re.compile(
    r"^(?P<base>[A-Z0-9]+)[/_:-](?P<quote>[A-Z0-9]+)(?::(?P<settle>[A-Z0-9]+))?$"
)  # BTC/USDT, BTC-USD, and ccxt's perpetual BTC/USDT:USDT (settle currency after the colon)
_NAME = re.compile(r"[A-Z0-9]+")
_PERP_SUFFIX = re.compile(r"[-_](?:PERP|PERPETUAL|SWAP)$")
"""How venues mark a perpetual in a symbol: BTC-PERP (FTX), BTC-PERPETUAL (Deribit),
BTCUSD_PERP (Binance COIN-M), BTC-USDT-SWAP (OKX)."""
_TIMEFRAME_WORDS: dict[str, str] = {"1d": "1d", "1h": "1h", "daily": "1d", "hourly": "1h"}
FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "quote_volume", "trades")
"""Candle fields a layout maps; the first five are required."""


@dataclass(frozen=True, slots=True)
class Layout:
    """One file layout: identifying columns, field mapping and what the source implies."""

    name: str
    time_column: str
    columns: dict[str, str]
    symbol_column: str | None = None
    naive_is_utc: bool = False
    exchange: str | None = None
    instrument: str | None = None
    quote: str | None = None
    extra_required: frozenset[str] = field(default_factory=frozenset)

    @property
    def required(self) -> frozenset[str]:
        """Header columns (lower-case) that must all be present for this layout."""
        base = {self.time_column, *(self.columns[f] for f in FIELDS[:5] if f in self.columns)}
        if self.symbol_column:
            base.add(self.symbol_column)
        return frozenset(base) | self.extra_required


_OHLCV = {f: f for f in FIELDS[:5]}

LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "gravestone",
        "timestamp",
        {**_OHLCV, "quote_volume": "quote_volume", "trades": "trades"},
        symbol_column="symbol",
        exchange="binance",
        instrument="perp",
        quote="USDT",
        extra_required=frozenset({"close_time", "quote_volume", "trades"}),
    ),
    Layout(
        "cryptodatadownload",
        "unix",
        {**_OHLCV, "trades": "tradecount"},  # volume columns are named per asset: see _cdd
        symbol_column="symbol",
        naive_is_utc=True,
        exchange="binance",
        instrument="spot",
        extra_required=frozenset({"date", "tradecount"}),
    ),
    Layout(
        "coinbase",
        "date",
        _OHLCV,
        symbol_column="symbol",
        naive_is_utc=True,
        exchange="coinbase",
        instrument="spot",
        extra_required=frozenset({"base"}),
    ),
    Layout(
        "yanniedog", "timestamp", _OHLCV, naive_is_utc=True, exchange="binance", instrument="spot"
    ),
    Layout("marketlab", "date", _OHLCV, naive_is_utc=True, exchange="binance", instrument="spot"),
    Layout(
        "canonical",
        "open_time",
        {**_OHLCV, "quote_volume": "quote_volume", "trades": "trades"},
    ),
)
"""Every layout the importer understands; the most specific match wins."""


def _cdd(header: list[str], layout: Layout) -> Layout:
    """CryptoDataDownload names volumes by asset (`Volume BTC`, `Volume USDT`): base first."""
    volumes = [c for c in header if c.startswith("volume ")]
    if len(volumes) != 2:
        return layout
    columns = {**layout.columns, "volume": volumes[0], "quote_volume": volumes[1]}
    return replace(layout, columns=columns)


def detect_layout(header: list[str], source: str) -> Layout:
    """The most specific known layout whose columns the (lower-case) header contains."""
    cols = set(header)
    candidates: list[Layout] = []
    for layout in LAYOUTS:
        candidate = _cdd(header, layout) if layout.name == "cryptodatadownload" else layout
        if candidate.required <= cols:
            candidates.append(candidate)
    if not candidates:
        raise ValidationFailed(
            f"{source}: unknown column layout",
            [
                Problem(
                    source,
                    f"columns {', '.join(header)} match no known layout; use the canonical "
                    "layout: symbol, open_time, open, high, low, close, volume"
                    "[, quote_volume, trades] (see docs/import.md)",
                )
            ],
        )
    return max(candidates, key=lambda lay: len(lay.required))


@dataclass(frozen=True, slots=True)
class Hints:
    """What the user told us (command-line options) — wins over anything inferred."""

    symbol: str | None = None
    exchange: str | None = None
    instrument: str | None = None
    quote: str | None = None
    timeframe: str | None = None


VENUE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
"""An exchange name as it appears in market keys: `binance`, `gate.io`, `okx_v5`."""


def hint_problems(hints: Hints) -> list[str]:
    """Why the user's --exchange / --instrument cannot name a market (empty when fine)."""
    problems: list[str] = []
    if hints.exchange is not None and not VENUE_NAME.fullmatch(hints.exchange.lower()):
        problems.append(
            f"--exchange {hints.exchange!r}: use letters, digits, '_', '-' or '.' "
            "(at most 32, starting with a letter or digit), e.g. binance"
        )
    if hints.instrument is not None and hints.instrument.lower() not in ("spot", "perp"):
        problems.append(f"--instrument {hints.instrument!r}: use spot or perp")
    return problems


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """The identity of one market a file feeds (matches the `markets` table)."""

    market_key: str
    token: str
    exchange: str
    pair: str
    quote: str
    instrument: str
    contract_multiplier: float
    source: str


def stem_of(path: Path) -> str:
    """A file name without its data suffixes (.csv, .csv.gz, .parquet)."""
    name = path.name
    for suffix in (".gz", ".csv", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name


def timeframe_from_name(path: Path) -> str | None:
    """`ETHUSDT_1d.csv.gz` → 1d, `BTC_USDT-1h` → 1h, `…_daily_…` → 1d; None if absent."""
    for part in re.split(r"[_.\-\s]", stem_of(path).lower()):
        if part in _TIMEFRAME_WORDS:
            return _TIMEFRAME_WORDS[part]
    return None


def pair_from_name(path: Path) -> str | None:
    """The pair in a single-market file name: `ETHUSDT_1d` → ETHUSDT, `BTC_USDT-1h` → BTC_USDT."""
    parts = re.split(r"[_\-\s]", stem_of(path))
    words = [p for p in parts if p.lower() not in _TIMEFRAME_WORDS]
    if len(words) >= 2 and words[-1] in QUOTES and re.fullmatch(r"[A-Z0-9]+", words[-2]):
        return f"{words[-2]}_{words[-1]}"
    if words and split_pair(words[-1], None) is not None:
        return words[-1]
    return None


def perp_marked(symbol: str) -> tuple[str, bool]:
    """The symbol without a perpetual marker, and whether it had one: BTC-PERP → (BTC, True)."""
    sym = symbol.strip().upper()
    stripped = _PERP_SUFFIX.sub("", sym)
    return stripped, stripped != sym


def split_pair(symbol: str, quote: str | None) -> tuple[str, str] | None:
    """`BTC/USD`, `BTC-USD`, `BTC/USDT:USDT`, `BTCUSDT` (or `BTC` plus a quote) → (base, quote);
    a perpetual marker is not a quote (`BTCUSD_PERP` → BTC, USD; `BTC-PERP` needs the quote);
    None if unsure."""
    sym = perp_marked(symbol)[0]
    sep = _SEPARATED.fullmatch(sym)
    if sep:
        return sep["base"], sep["quote"]
    if not _NAME.fullmatch(sym):
        return None  # 'BTC USDT', 'BTC/USDT/X': no base to trust
    if quote:
        q = quote.upper()
        if sym.endswith(q) and len(sym) > len(q):
            return sym[: -len(q)], q
        return sym, q
    for q in QUOTES:
        if sym.endswith(q) and len(sym) > len(q):
            return sym[: -len(q)], q
    return None


def token_of(base: str) -> tuple[str, float]:
    """The token behind a quoted base and its contract multiplier: 1000PEPE → (PEPE, 1000)."""
    match = _MULTIPLIER.fullmatch(base)
    multiplier = 1.0
    if match:
        base = match["base"]
        multiplier = 1e6 if match["mult"] == "1M" else float(match["mult"])
    return TOKEN_ALIASES.get(base, base), multiplier


def venue_pair(exchange: str, base: str, quote: str) -> str:
    """The pair as the venue spells it: `BTCUSDT` on Binance, `BTC-USD` on Coinbase."""
    return f"{base}{PAIR_SEPARATORS.get(exchange.lower(), '')}{quote}"


LINEAR_SETTLE: tuple[str, ...] = ("USDT", "USDC")
"""Quotes whose perpetuals settle in the quote itself (USDⓈ-M): ccxt's `BASE/QUOTE:QUOTE`."""


def unified_symbol(exchange: str, pair: str, quote: str, instrument: str) -> str | None:
    """ccxt's symbol of a stored market, the inverse of `venue_pair`: binance ETHUSDT spot →
    `ETH/USDT`, coinbase `BTC-USD` → `BTC/USD`, binance 1000PEPEUSDT perp →
    `1000PEPE/USDT:USDT`; None when the pair does not end in its quote or the perpetual is
    not a linear one."""
    suffix = f"{PAIR_SEPARATORS.get(exchange.lower(), '')}{quote}".upper()
    if not pair.upper().endswith(suffix) or len(pair) <= len(suffix):
        return None
    base = pair[: -len(suffix)].upper()
    if instrument == "spot":
        return f"{base}/{quote.upper()}"
    if instrument == "perp" and quote.upper() in LINEAR_SETTLE:
        return f"{base}/{quote.upper()}:{quote.upper()}"
    return None


def market_for(symbol: str, layout: Layout, hints: Hints) -> MarketSpec | str:
    """The market a raw symbol denotes, or the reason it cannot be determined."""
    quote = hints.quote or layout.quote
    perp = perp_marked(symbol)[1]
    split = split_pair(symbol, quote)
    if split is None:
        what = "the quote currency of perpetual" if perp else "base and quote of symbol"
        return f"cannot tell {what} {symbol!r}: pass --quote"
    base, quote = split
    exchange = (hints.exchange or layout.exchange or "").lower()
    instrument = (hints.instrument or layout.instrument or ("perp" if perp else "")).lower()
    if not exchange or not instrument:
        return (
            "exchange and instrument are unknown for this layout: pass --exchange and --instrument"
        )
    if instrument not in ("spot", "perp"):
        return f"instrument must be spot or perp, not {instrument!r}"
    if perp and instrument == "spot":
        return f"symbol {symbol!r} names a perpetual, but the instrument is spot"
    token, multiplier = token_of(base)
    pair = venue_pair(exchange, base, quote)
    return MarketSpec(
        market_key=f"{exchange}:{instrument}:{pair}",
        token=token,
        exchange=exchange,
        pair=pair,
        quote=quote,
        instrument=instrument,
        contract_multiplier=multiplier,
        source=f"import:{layout.name}",
    )
