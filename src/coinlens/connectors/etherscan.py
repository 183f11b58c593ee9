"""Gas prices and on-chain activity from an Etherscan-shaped explorer API (v2, chainid).

Every call is GET {base}?chainid=..&module=..&action=..&apikey=..; the envelope's status
"0" carries an error text, mapped ONCE by `ENVELOPE_ERRORS` (rate limit, bad key, no data).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from coinlens.connectors.coingecko import utc_today
from coinlens.connectors.http import JsonApi
from coinlens.connectors.payloads import DailyTxCount, EtherscanEnvelope, GasOracle
from coinlens.connectors.retry import RetryPolicy
from coinlens.domain.errors import (
    CoinlensError,
    ConfigError,
    DataUnavailable,
    RateLimited,
    TemporaryError,
)
from coinlens.domain.live import MetricPoint

DEFAULT_URL = "https://api.etherscan.io/v2/api"

ENVELOPE_ERRORS: tuple[tuple[str, Callable[[str], CoinlensError]], ...] = (
    ("rate limit", lambda d: RateLimited(d, 1.0)),
    ("invalid api key", ConfigError),
    ("missing/invalid api key", ConfigError),
    ("no transactions found", DataUnavailable),
    ("no records found", DataUnavailable),
)
"""Substring of an error envelope's result/message → domain error (first match wins)."""


def envelope_error(body: EtherscanEnvelope, what: str) -> CoinlensError:
    """The domain error an Etherscan status-0 envelope means."""
    text = f"{body.message} {body.result}".lower()
    detail = f"{what}: {body.message}: {str(body.result)[:200]}"
    for needle, make in ENVELOPE_ERRORS:
        if needle in text:
            return make(detail)
    return DataUnavailable(detail)


def parse_gas(raw: GasOracle, day: date, entity: str, source: str) -> MetricPoint:
    """The proposed gas price (gwei) as today's gas metric."""
    return MetricPoint(
        entity=entity,
        metric="gas_price_gwei",
        date=day,
        value=raw.ProposeGasPrice,
        unit="gwei",
        source=source,
    )


def parse_daily_tx(raw: DailyTxCount, entity: str, source: str) -> MetricPoint:
    """One day's transaction count."""
    day = datetime.fromtimestamp(raw.unixTimeStamp, UTC).date()
    return MetricPoint(
        entity=entity,
        metric="tx_count",
        date=day,
        value=float(raw.transactionCount),
        unit="count",
        source=source,
    )


class EtherscanConnector:
    """An Etherscan-style explorer for one chain."""

    name = "etherscan"

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        chain_id: int = 1,
        entity: str = "ethereum",
        policy: RetryPolicy | None = None,
        timeout_s: float = 20.0,
        today: Callable[[], date] = utc_today,
    ) -> None:
        params = {"chainid": str(chain_id)}
        if api_key:
            params["apikey"] = api_key
        self.api = JsonApi(
            self.name, base_url, policy=policy or RetryPolicy(), timeout=timeout_s, params=params
        )
        self.entity = entity
        self.today = today

    def close(self) -> None:
        """Release the HTTP client."""
        self.api.close()

    def _result(self, module: str, action: str, **params: Any) -> object:
        what = f"{self.name} {module}.{action}"
        body = self.api.get("", {"module": module, "action": action, **params})
        try:
            envelope = EtherscanEnvelope.model_validate(body)
        except ValidationError as exc:
            raise TemporaryError(f"{what}: unexpected payload: {exc}") from exc
        if envelope.status != "1":
            raise envelope_error(envelope, what)
        return envelope.result

    def fetch_gas(self) -> list[MetricPoint]:
        """Today's proposed gas price."""
        result = self._result("gastracker", "gasoracle")
        try:
            raw = GasOracle.model_validate(result)
        except ValidationError as exc:
            raise TemporaryError(f"{self.name} gasoracle: unexpected payload: {exc}") from exc
        return [parse_gas(raw, self.today(), self.entity, self.name)]

    def fetch_daily_tx(self, start: date, end: date) -> list[MetricPoint]:
        """Transactions per UTC day from `start` to `end` (inclusive)."""
        result = self._result(
            "stats", "dailytx", startdate=start.isoformat(), enddate=end.isoformat(), sort="asc"
        )
        if not isinstance(result, list):
            raise TemporaryError(f"{self.name} dailytx: expected a list")
        out = []
        for row in result:
            try:
                out.append(parse_daily_tx(DailyTxCount.model_validate(row), self.entity, self.name))
            except ValidationError:
                continue  # a malformed day is skipped; the rest still count
        return out
