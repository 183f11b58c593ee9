"""Raw payload models: strict mirrors of what venues (or ccxt's unified layer) return.

Kept apart from domain types on purpose: a field the venue renames breaks HERE, loudly, and
the explicit `parse_*` functions in each connector are the only bridge to the domain.
Unknown fields are ignored (venues add fields all the time); known fields are typed strictly.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Raw(BaseModel):
    """Base of raw payloads: frozen; extra venue fields ignored, not trusted."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


def _num(value: object) -> object:
    """Venues send numbers as JSON strings ("123.4"); empty strings mean absent."""
    if value == "":
        return None
    if isinstance(value, str):
        return float(value)
    return value


def _int(value: object) -> object:
    """Explorers send integers as decimal strings ("19876543")."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


Num = Annotated[float, BeforeValidator(_num)]
OptNum = Annotated[float | None, BeforeValidator(_num)]
IntStr = Annotated[int, BeforeValidator(_int)]


# --- ccxt unified shapes (what ccxt returns after parsing each venue) ------------------------


class CcxtOhlcv(Raw):
    """One ccxt OHLCV row: [timestamp ms, open, high, low, close, volume]."""

    timestamp: int = Field(ge=0)
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None

    @classmethod
    def from_row(cls, row: list[object]) -> CcxtOhlcv:
        """Validate a positional ccxt row."""
        names = ("timestamp", "open", "high", "low", "close", "volume")
        if len(row) < len(names):
            raise ValueError(f"OHLCV row has {len(row)} fields, expected 6")
        return cls.model_validate(dict(zip(names, row[:6], strict=True)))


class CcxtTicker(Raw):
    """The fields of a ccxt unified ticker that Coinlens uses."""

    symbol: str
    timestamp: int | None = None
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    baseVolume: float | None = None
    quoteVolume: float | None = None


# --- CoinGecko (/api/v3/coins/markets) -------------------------------------------------------


class CoinGeckoMarket(Raw):
    """One row of CoinGecko's /coins/markets."""

    id: str
    symbol: str
    name: str
    current_price: OptNum = None
    market_cap: OptNum = None
    market_cap_rank: int | None = None
    total_volume: OptNum = None
    circulating_supply: OptNum = None
    total_supply: OptNum = None
    max_supply: OptNum = None
    last_updated: str | None = None


# --- DefiLlama (/v2/chains, /v2/historicalChainTvl/{chain}, stablecoins /stablecoins) ------


class LlamaChain(Raw):
    """One chain of DefiLlama's /v2/chains."""

    name: str
    tvl: Num
    tokenSymbol: str | None = None
    gecko_id: str | None = None


class LlamaTvlPoint(Raw):
    """One point of /v2/historicalChainTvl/{chain}: date is epoch seconds (UTC midnight)."""

    date: int
    tvl: Num


class LlamaStablecoin(Raw):
    """One pegged asset of stablecoins.llama.fi/stablecoins."""

    id: str
    name: str
    symbol: str
    pegType: str
    circulating: dict[str, OptNum] = Field(default_factory=dict)
    price: OptNum = None  # in USD; converts a non-dollar peg's supply


class LlamaStablecoins(Raw):
    """The stablecoins list envelope."""

    peggedAssets: list[LlamaStablecoin]


# --- Etherscan-style explorers (/v2/api?module=...&action=...) -------------------------------


class EtherscanEnvelope(Raw):
    """Every Etherscan response: status "1" ok, "0" error (result then carries the reason)."""

    status: str
    message: str
    result: object


class GasOracle(Raw):
    """module=gastracker&action=gasoracle: gas prices in gwei, as strings."""

    LastBlock: IntStr
    SafeGasPrice: Num
    ProposeGasPrice: Num
    FastGasPrice: Num
    suggestBaseFee: OptNum = None
    gasUsedRatio: str | None = None


class DailyTxCount(Raw):
    """module=stats&action=dailytx: transactions per UTC day."""

    UTCDate: str
    unixTimeStamp: IntStr
    transactionCount: IntStr
