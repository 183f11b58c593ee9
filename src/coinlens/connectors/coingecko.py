"""Market caps, ranks, prices and supply from a CoinGecko-shaped API (/api/v3/coins/markets).

Query → fetch → parse: `fetch_markets` pages through /coins/markets, each row is validated as
`payloads.CoinGeckoMarket` and converted by `parse_market`. A row that fails validation is
skipped and reported in `rejected` (one broken coin must not hide the other 249).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from pydantic import ValidationError

from coinlens.connectors.http import JsonApi
from coinlens.connectors.payloads import CoinGeckoMarket
from coinlens.connectors.retry import RetryPolicy
from coinlens.domain.errors import TemporaryError
from coinlens.domain.live import MarketCapSnapshot

DEFAULT_URL = "https://api.coingecko.com/api/v3"
PER_PAGE = 250


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def parse_market(raw: CoinGeckoMarket, day: date, source: str) -> MarketCapSnapshot:
    """A CoinGecko market row as a domain snapshot (symbol upper-cased)."""
    return MarketCapSnapshot(
        coingecko_id=raw.id,
        symbol=raw.symbol.upper(),
        name=raw.name,
        snapshot_date=day,
        rank=raw.market_cap_rank,
        market_cap=raw.market_cap,
        price=raw.current_price,
        volume_24h=raw.total_volume,
        circulating_supply=raw.circulating_supply,
        total_supply=raw.total_supply,
        max_supply=raw.max_supply,
        source=source,
    )


class CoinGeckoConnector:
    """CoinGecko (or a compatible API) over the shared HTTP client."""

    name = "coingecko"

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 20.0,
        today: Callable[[], date] = utc_today,
    ) -> None:
        headers = {"x-cg-demo-api-key": api_key} if api_key else {}
        self.api = JsonApi(
            self.name, base_url, policy=policy or RetryPolicy(), timeout=timeout_s, headers=headers
        )
        self.today = today
        self.rejected: list[str] = []

    def close(self) -> None:
        """Release the HTTP client."""
        self.api.close()

    def fetch_markets(
        self, ids: Sequence[str] | None = None, pages: int = 1, vs_currency: str = "usd"
    ) -> list[MarketCapSnapshot]:
        """Snapshots for `ids` (or the top `pages` × 250 coins by market cap)."""
        out: list[MarketCapSnapshot] = []
        day = self.today()
        for page in range(1, pages + 1):
            params: dict[str, str | int] = {
                "vs_currency": vs_currency,
                "order": "market_cap_desc",
                "per_page": PER_PAGE,
                "page": page,
            }
            if ids:
                params["ids"] = ",".join(ids)
            rows = self.api.get("coins/markets", params)
            if not isinstance(rows, list):
                raise TemporaryError(f"{self.name} coins/markets: expected a list")
            out.extend(self._parse_rows(rows, day))
            if ids or len(rows) < PER_PAGE:
                break
        return out

    def _parse_rows(self, rows: list[object], day: date) -> list[MarketCapSnapshot]:
        parsed: list[MarketCapSnapshot] = []
        for row in rows:
            try:
                parsed.append(parse_market(CoinGeckoMarket.model_validate(row), day, self.name))
            except ValidationError as exc:
                self.rejected.append(f"{str(row)[:200]}: {str(exc).splitlines()[0]}")
        return parsed
