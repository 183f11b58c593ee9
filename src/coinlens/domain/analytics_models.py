"""Analytics results the services return: indicators, signals, backtests, levels, ROI/risk.

Every result says where it came from (`source`), which day it describes (`as_of`, the UTC
day of the last close used) and what the reader should know (`warnings`, e.g. staleness).
Numbers that cannot be computed (too little history) are null, never NaN.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from coinlens.domain.models import DomainModel

SignalLabel = Literal["short", "flat", "long"]
SIGNAL_LABELS: dict[int, SignalLabel] = {-1: "short", 0: "flat", 1: "long"}
SIGNAL_VALUES: dict[SignalLabel, int] = {v: k for k, v in SIGNAL_LABELS.items()}
FILL_CONVENTION: Literal["next bar open"] = "next bar open"


class IndicatorRow(DomainModel):
    """One day of a token's candles with every indicator as of that day's close."""

    date: date
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    volume: float | None = None
    rsi_14: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    ema_20: float | None = None
    ema_50: float | None = None
    ema_200: float | None = None
    bb_upper: float | None = None
    bb_middle: float | None = None
    bb_lower: float | None = None
    atr_14: float | None = None
    adx_14: float | None = None
    plus_di_14: float | None = None
    minus_di_14: float | None = None
    obv: float | None = None
    stoch_k: float | None = None
    stoch_d: float | None = None
    mfi_14: float | None = None
    volatility_30d: float | None = Field(default=None, description="Annualised, log returns")
    vwap_20: float | None = None


class IndicatorSeries(DomainModel):
    """A page of daily indicator rows (oldest first) computed from the token's own candles."""

    symbol: str
    market: str = Field(description="market_key of the candles used (the primary market)")
    start: date | None = None
    end: date | None = None
    rows: list[IndicatorRow]
    next_cursor: str | None = None
    source: str
    as_of: date | None = Field(default=None, description="Day of the token's last candle (UTC)")
    warnings: list[str] = Field(default_factory=list)


class SignalEvent(DomainModel):
    """A change of the daily signal, decided at that day's close."""

    date: date
    from_signal: SignalLabel
    to_signal: SignalLabel
    price: float = Field(description="Close of the day the signal changed")
    score: float | None = None


class TokenSignal(DomainModel):
    """A token's current signal and score, the indicators behind them, and its history."""

    symbol: str
    signal: SignalLabel
    score: float | None = Field(default=None, description="In [-1, 1]; null while warming up")
    since: date | None = Field(default=None, description="Day of the last change")
    indicators: dict[str, float | None] = Field(description="Values the rule used at as_of")
    history: list[SignalEvent]
    rules: str = Field(default="docs/signals.md", description="Where the rule is documented")
    source: str
    as_of: date
    computed_at: AwareDatetime
    warnings: list[str] = Field(default_factory=list)


class Metrics(DomainModel):
    """Whole-period performance of an equity curve (fractions, annualised where named)."""

    total_return: float | None = None
    cagr: float | None = None
    volatility: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None


class TradeMetrics(DomainModel):
    """Trade statistics of the signal strategy."""

    trades: int = Field(ge=0)
    win_rate: float | None = None
    avg_trade_return: float | None = None
    exposure: float | None = Field(default=None, description="Share of bars holding a position")


class BacktestParams(DomainModel):
    """The parameters a backtest used, so the figures can be reproduced."""

    fees: float = Field(description="Fraction of traded value per side")
    slippage: float = Field(description="Fraction of price per side")
    init_cash: float
    periods_per_year: float
    fill: Literal["next bar open"] = FILL_CONVENTION
    position: Literal["long-only, all cash"] = "long-only, all cash"
    start: date | None = None
    end: date | None = None
    params_key: str


class EquityPoint(DomainModel):
    """Equity of the strategy and of buy-and-hold on one day (starting cash 1)."""

    date: date
    strategy: float | None = None
    buy_hold: float | None = None


class SignalPerformance(DomainModel):
    """The signal strategy backtested against buy-and-hold, with the parameters used."""

    symbol: str
    params: BacktestParams
    start: date | None = Field(default=None, description="First day with a valid close")
    end: date | None = None
    strategy: Metrics
    trades: TradeMetrics
    buy_hold: Metrics
    equity: list[EquityPoint] = Field(description="Equity curves, downsampled to <= 200 points")
    source: str
    as_of: date | None = None
    computed_at: AwareDatetime
    warnings: list[str] = Field(default_factory=list)


class Level(DomainModel):
    """A support or resistance level clustered from swing pivots."""

    price: float
    kind: Literal["support", "resistance"]
    strength: float = Field(ge=0, le=1)
    touches: int = Field(ge=1)
    last_touch: date


class TokenLevels(DomainModel):
    """Nearest support below and resistance above the last close, and the strongest levels."""

    symbol: str
    close: float | None = None
    support: Level | None = None
    resistance: Level | None = None
    strongest: list[Level]
    method: str = "swing pivots (5 bars), ATR-scaled clustering over 365 days; docs/levels.md"
    source: str
    as_of: date
    warnings: list[str] = Field(default_factory=list)

    def distinct(self) -> list[Level]:
        """Nearest support, nearest resistance, then the strongest levels; each price once."""
        seen: set[float] = set()
        out: list[Level] = []
        for lv in [self.support, self.resistance, *self.strongest]:
            if lv is None or round(lv.price, 12) in seen:
                continue
            seen.add(round(lv.price, 12))
            out.append(lv)
        return out


class Risk(DomainModel):
    """Risk over the last 90 days (volatility, Sharpe, Sortino, beta, correlation) and drawdowns."""

    volatility_90d: float | None = None
    sharpe_90d: float | None = None
    sortino_90d: float | None = None
    max_drawdown: float | None = Field(
        default=None, description="Deepest drawdown of the closes since `first_close`"
    )
    drawdown_from_ath: float | None = Field(
        default=None, description="Last close / highest close since `first_close` - 1"
    )
    beta_btc_90d: float | None = None
    corr_btc_90d: float | None = None
    beta_eth_90d: float | None = None
    corr_eth_90d: float | None = None


class TokenRoi(DomainModel):
    """Returns over standard horizons and risk, as of the token's last close."""

    symbol: str
    close: float | None = None
    roi: dict[str, float | None] = Field(
        description="1d, 7d, 30d, 90d, 1y (365 days), ytd, since_listing (fractions); "
        "since_listing runs from `first_close`"
    )
    risk: Risk
    first_close: date | None = Field(
        default=None,
        description="Day of the first close of the token's series in our data: since_listing, "
        "max_drawdown and drawdown_from_ath measure from it. It is the token's listing only "
        "when the data reach back that far (Binance perpetual histories start 2024-01-10 at "
        "the earliest, Coinbase downloads 2020-01-01)",
    )
    source: str
    as_of: date
    warnings: list[str] = Field(default_factory=list)


class SignalListItem(DomainModel):
    """One token's latest signal in the universe listing."""

    symbol: str
    name: str
    sector: str | None = None
    signal: SignalLabel
    previous_signal: SignalLabel | None = None
    score: float | None = None
    since: date | None = None
    as_of: date


class SignalsPage(DomainModel):
    """A page of the universe's latest signals in symbol order."""

    items: list[SignalListItem]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    next_cursor: str | None = None
    source: str
    as_of: date | None = None
    warnings: list[str] = Field(default_factory=list)
