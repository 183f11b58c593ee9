"""Typed answers of the Coinlens API, mirroring its OpenAPI schemas.

Models accept fields they do not know (`extra="allow"`), so a newer server never breaks an
older SDK; the fields they declare are validated and typed. Dates are `datetime.date`,
instants are timezone-aware `datetime`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base of every SDK model: tolerant of new fields, immutable."""

    model_config = ConfigDict(extra="allow", frozen=True)


# --- tokens --------------------------------------------------------------------------------


class Token(Model):
    symbol: str
    name: str
    sector: str | None = None
    categories: list[str] = Field(default_factory=list)
    coingecko_id: str | None = None
    is_stablecoin: bool = False
    primary_market: str | None = None
    first_candle: dt.datetime | None = None
    last_candle: dt.datetime | None = None


class TokensPage(Model):
    items: list[Token]
    total: int
    limit: int
    next_cursor: str | None = None
    source: str
    as_of: dt.datetime | None = None


class Supply(Model):
    circulating: float | None = None
    total: float | None = None
    max: float | None = None


class CandleCoverage(Model):
    timeframe: str
    count: int
    first: dt.datetime
    last: dt.datetime
    missing: int = 0


class Market(Model):
    market_key: str
    exchange: str
    pair: str
    quote: str
    instrument: str
    contract_multiplier: float
    source: str
    is_primary: bool
    history_until: dt.datetime | None = None
    coverage: list[CandleCoverage] = Field(default_factory=list)


class TokenDetail(Token):
    cmc_symbol: str | None = None
    supply: Supply | None = None
    notes: str | None = None
    markets: list[Market] = Field(default_factory=list)
    source: str
    as_of: dt.datetime | None = None


class Candle(Model):
    open_time: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float | None = None
    trades: int | None = None


class Ohlcv(Model):
    symbol: str
    market: str
    exchange: str
    instrument: str
    quote: str
    timeframe: str
    contract_multiplier: float
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    candles: list[Candle]
    next_cursor: str | None = None
    source: str
    as_of: dt.datetime | None = None
    warnings: list[str] = Field(default_factory=list)


# --- analytics -----------------------------------------------------------------------------


class SignalEvent(Model):
    date: dt.date
    from_signal: str
    to_signal: str
    price: float
    score: float | None = None


class TokenSignal(Model):
    symbol: str
    signal: str
    score: float | None = None
    since: dt.date | None = None
    indicators: dict[str, Any]
    history: list[SignalEvent]
    rules: str = ""
    source: str
    as_of: dt.date
    computed_at: dt.datetime
    warnings: list[str] = Field(default_factory=list)


class SignalListItem(Model):
    symbol: str
    name: str
    sector: str | None = None
    signal: str
    previous_signal: str | None = None
    score: float | None = None
    since: dt.date | None = None
    as_of: dt.date


class SignalsPage(Model):
    items: list[SignalListItem]
    total: int
    limit: int
    next_cursor: str | None = None
    source: str
    as_of: dt.date | None = None
    warnings: list[str] = Field(default_factory=list)


class Metrics(Model):
    total_return: float | None = None
    cagr: float | None = None
    volatility: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None


class TradeMetrics(Model):
    trades: int
    win_rate: float | None = None
    avg_trade_return: float | None = None
    exposure: float | None = None


class SignalPerformance(Model):
    symbol: str
    params: dict[str, Any]
    start: dt.date | None = None
    end: dt.date | None = None
    strategy: Metrics
    trades: TradeMetrics
    buy_hold: Metrics
    equity: list[dict[str, Any]]
    source: str
    as_of: dt.date | None = None
    computed_at: dt.datetime
    warnings: list[str] = Field(default_factory=list)


class Level(Model):
    price: float
    kind: str
    strength: float
    touches: int
    last_touch: dt.date


class TokenLevels(Model):
    symbol: str
    close: float | None = None
    support: Level | None = None
    resistance: Level | None = None
    strongest: list[Level]
    method: str = ""
    source: str
    as_of: dt.date
    warnings: list[str] = Field(default_factory=list)


class TokenRoi(Model):
    symbol: str
    close: float | None = None
    roi: dict[str, float | None]
    risk: dict[str, float | None]
    first_close: dt.date | None = None
    source: str
    as_of: dt.date
    warnings: list[str] = Field(default_factory=list)


# --- grades --------------------------------------------------------------------------------


class SubGrade(Model):
    name: str
    grade: float
    weight: float
    contribution: float


class GradeBreakdown(Model):
    grade: float
    band: str
    action: str
    sub_grades: list[SubGrade]


class GradePoint(Model):
    day: dt.date
    trader: float
    investor: float | None = None
    trader_band: str
    investor_band: str | None = None
    components: dict[str, float] = Field(default_factory=dict)


class GradePeriodRecord(Model):
    period: str
    start: dt.date
    end: dt.date
    days: int
    rank_ic: float | None = None
    rank_ic_t: float | None = None
    spread: float | None = None
    spread_t: float | None = None
    ic_hit_rate: float | None = None
    top_hit_rate: float | None = None
    tokens: float | None = None


class GradeYearRecord(Model):
    year: int
    days: int
    rank_ic: float | None = None
    rank_ic_t: float | None = None


class GradeRecord(Model):
    grade: str
    horizon: int
    periods: list[GradePeriodRecord] = Field(default_factory=list)
    years: list[GradeYearRecord] = Field(default_factory=list)


class GradeTrackRecord(Model):
    evaluated_at: dt.datetime
    data_end: dt.date
    first_day: dt.date
    last_day: dt.date
    out_of_sample_from: dt.date
    grades: list[GradeRecord]
    report: str
    method: str | None = None


class TokenGrades(Model):
    symbol: str
    name: str
    sector: str | None = None
    day: dt.date | None = None
    trader: GradeBreakdown | None = None
    investor: GradeBreakdown | None = None
    history: list[GradePoint]
    source: str
    model: str
    warnings: list[str] = Field(default_factory=list)
    track_record: GradeTrackRecord | None = None


class LeaderboardEntry(Model):
    symbol: str
    name: str
    sector: str | None = None
    trader: float
    investor: float | None = None
    trader_band: str
    investor_band: str | None = None
    components: dict[str, float] = Field(default_factory=dict)


class GradesPage(Model):
    day: dt.date
    sort: str
    order: str
    items: list[LeaderboardEntry]
    total: int
    limit: int
    next_cursor: str | None = None
    source: str
    model: str
    as_of: dt.datetime | None = None


# --- forecasts -----------------------------------------------------------------------------


class Quantiles(Model):
    p05: float
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    p95: float


class HorizonForecast(Model):
    horizon: int
    target_date: dt.date
    quantiles: Quantiles
    baseline: Quantiles | None = None


class CoverageRecord(Model):
    level: int
    observed: float | None = None
    low: float | None = None
    high: float | None = None
    random_walk: float | None = None


class HorizonRecord(Model):
    horizon: int
    rows: int
    pinball_skill: float | None = None
    skill_low: float | None = None
    skill_high: float | None = None
    coverage: list[CoverageRecord] = Field(default_factory=list)
    held_out_skill: float | None = None
    direction_accuracy: float | None = None
    direction_p_value: float | None = None


class TrackRecord(Model):
    evaluated_at: dt.datetime
    data_end: dt.date
    first_origin: dt.date
    last_origin: dt.date
    retrains: int
    step_days: int
    held_out_from: dt.date
    horizons: list[HorizonRecord]
    report: str
    method: str | None = None


class ModelInfo(Model):
    model_id: str
    kind: str
    trained_at: dt.datetime
    cutoff: dt.date
    features: list[str]
    metrics: dict[str, Any]
    track_record: TrackRecord | None = None


class Predictions(Model):
    symbol: str
    origin: dt.date
    last_close: float
    model: ModelInfo
    horizons: list[HorizonForecast]
    warnings: list[str] = Field(default_factory=list)


class KeyLevel(Model):
    price: float
    kind: str
    strength: float
    distance: float


class TargetLevels(Model):
    crossed: list[KeyLevel] = Field(default_factory=list)
    beyond: KeyLevel | None = None


class Scenario(Model):
    horizon: int
    target_date: dt.date
    bear: float
    base: float
    bull: float
    bear_change: float
    base_change: float
    bull_change: float
    bear_levels: TargetLevels = Field(default_factory=TargetLevels)
    base_levels: TargetLevels = Field(default_factory=TargetLevels)
    bull_levels: TargetLevels = Field(default_factory=TargetLevels)


class Scenarios(Model):
    symbol: str
    origin: dt.date
    last_close: float
    model_id: str
    scenarios: list[Scenario]
    levels: list[KeyLevel] = Field(default_factory=list)
    levels_as_of: dt.date | None = None
    method: str
    warnings: list[str] = Field(default_factory=list)


class Probability(Model):
    symbol: str
    origin: dt.date
    last_close: float
    level: float
    direction: str
    by: dt.date
    days: int
    p_at: float
    p_by: float
    model_id: str
    method: str


# --- alerts and keys -----------------------------------------------------------------------


class Channel(Model):
    kind: str
    redacted: str


class AlertRule(Model):
    id: int
    symbol: str
    kind: str
    spec: dict[str, Any]
    channels: list[Channel]
    cooldown_seconds: int
    expires_at: dt.datetime | None = None
    timezone: str = "UTC"
    active: bool
    armed: bool
    note: str | None = None
    created_at: dt.datetime
    last_fired_at: dt.datetime | None = None
    warnings: list[str] = Field(default_factory=list)


class AlertRulesPage(Model):
    items: list[AlertRule]
    total: int
    limit: int


class Key(Model):
    id: int
    prefix: str
    name: str | None = None
    email: str | None = None
    scopes: list[str]
    plan: str
    status: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    rotated_from: int | None = None


class KeyCreated(Key):
    key: str = Field(description="The plaintext key: shown once, store it now")


class KeysPage(Model):
    items: list[Key]
    next_cursor: str | None = None


class Health(Model):
    status: str
    version: str
