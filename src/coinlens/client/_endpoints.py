"""Every API operation as a `Call`, shared by the sync and async clients."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from coinlens.client import models as m
from coinlens.client._base import Call, call

Instant = dt.date | dt.datetime | str


def _sym(symbol: str) -> str:
    return quote(symbol.strip(), safe="")


def _day(value: Instant | None) -> dt.date | str | None:
    """A date-only parameter: a datetime is sent as its (UTC) day, which the API accepts."""
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).date()
    return value


def health() -> Call[m.Health]:
    return call("GET", "/healthz", m.Health)


def tokens(
    q: str | None, sector: str | None, limit: int | None, cursor: str | None
) -> Call[m.TokensPage]:
    params = {"q": q, "sector": sector, "limit": limit, "cursor": cursor}
    return call("GET", "/v1/tokens", m.TokensPage, params=params)


def token(symbol: str) -> Call[m.TokenDetail]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}", m.TokenDetail)


def ohlcv(symbol: str, params: dict[str, Any]) -> Call[m.Ohlcv]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}/ohlcv", m.Ohlcv, params=params)


def signal(symbol: str) -> Call[m.TokenSignal]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}/signals", m.TokenSignal)


def signal_performance(symbol: str, params: dict[str, Any]) -> Call[m.SignalPerformance]:
    path = f"/v1/tokens/{_sym(symbol)}/signals/performance"
    return call("GET", path, m.SignalPerformance, params=params)


def signals(params: dict[str, Any]) -> Call[m.SignalsPage]:
    return call("GET", "/v1/signals", m.SignalsPage, params=params)


def levels(symbol: str) -> Call[m.TokenLevels]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}/levels", m.TokenLevels)


def roi(symbol: str) -> Call[m.TokenRoi]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}/roi", m.TokenRoi)


def grades(symbol: str, start: Instant | None, end: Instant | None) -> Call[m.TokenGrades]:
    params = {"start": _day(start), "end": _day(end)}
    return call("GET", f"/v1/tokens/{_sym(symbol)}/grades", m.TokenGrades, params=params)


def leaderboard(params: dict[str, Any]) -> Call[m.GradesPage]:
    params = {**params, "day": _day(params.get("day"))}
    return call("GET", "/v1/grades", m.GradesPage, params=params)


def predictions(symbol: str) -> Call[m.Predictions]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}/predictions", m.Predictions)


def scenarios(symbol: str) -> Call[m.Scenarios]:
    return call("GET", f"/v1/tokens/{_sym(symbol)}/scenarios", m.Scenarios)


def probability(
    symbol: str, by: Instant, above: float | None, below: float | None
) -> Call[m.Probability]:
    params = {"by": _day(by), "above": above, "below": below}
    return call("GET", f"/v1/tokens/{_sym(symbol)}/probability", m.Probability, params=params)


def models() -> Call[list[m.ModelInfo]]:
    return call("GET", "/v1/models", list[m.ModelInfo])


def create_alert(rule: dict[str, Any]) -> Call[m.AlertRule]:
    return call("POST", "/v1/alerts", m.AlertRule, body=rule)


def alerts() -> Call[m.AlertRulesPage]:
    return call("GET", "/v1/alerts", m.AlertRulesPage)


def alert(rule_id: int) -> Call[m.AlertRule]:
    return call("GET", f"/v1/alerts/{int(rule_id)}", m.AlertRule)


def delete_alert(rule_id: int) -> Call[None]:
    return call("DELETE", f"/v1/alerts/{int(rule_id)}", None, expect_body=False)


def create_key(body: dict[str, Any]) -> Call[m.KeyCreated]:
    return call("POST", "/v1/keys", m.KeyCreated, body=body)


def keys(limit: int | None, cursor: str | None) -> Call[m.KeysPage]:
    return call("GET", "/v1/keys", m.KeysPage, params={"limit": limit, "cursor": cursor})


def revoke_key(key_id: int) -> Call[m.Key]:
    return call("DELETE", f"/v1/keys/{int(key_id)}", m.Key)


def rotate_key(key_id: int, overlap_seconds: int) -> Call[m.KeyCreated]:
    body = {"overlap_seconds": overlap_seconds}
    return call("POST", f"/v1/keys/{int(key_id)}/rotate", m.KeyCreated, body=body)
