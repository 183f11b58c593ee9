"""Chain TVL and stablecoin supply from DefiLlama-shaped APIs.

TVL lives on api.llama.fi (/v2/chains, /v2/historicalChainTvl/{chain}); stablecoins on
stablecoins.llama.fi (/stablecoins). Metric names match the packaged dataset: `tvl_usd` per
chain (entity = lower-case chain), `supply_usd` per stablecoin (see `parse_stablecoins`) and
`all_stablecoins`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TypeVar

from pydantic import ValidationError

from coinlens.connectors.coingecko import utc_today
from coinlens.connectors.http import JsonApi
from coinlens.connectors.payloads import LlamaChain, LlamaStablecoins, LlamaTvlPoint, Raw
from coinlens.connectors.retry import RetryPolicy
from coinlens.domain.errors import TemporaryError
from coinlens.domain.live import MetricPoint

M = TypeVar("M", bound=Raw)

DEFAULT_URL = "https://api.llama.fi"
DEFAULT_STABLECOINS_URL = "https://stablecoins.llama.fi"


def parse_tvl_point(raw: LlamaTvlPoint, chain: str, source: str) -> MetricPoint:
    """One historical TVL point as a metric (date = UTC day of the timestamp)."""
    day = datetime.fromtimestamp(raw.date, UTC).date()
    return MetricPoint(
        entity=chain.lower(), metric="tvl_usd", date=day, value=raw.tvl, unit="USD", source=source
    )


def parse_stablecoins(raw: LlamaStablecoins, day: date, source: str) -> list[MetricPoint]:
    """Each stablecoin's circulating supply in USD, plus their total as `all_stablecoins`.

    Dollar pegs count at face value; other pegs (EUR, CHF, gold …) at the asset's USD `price`
    and are left out without one. Symbols are not unique on DefiLlama: the largest asset keeps
    the symbol, the others are named by their upper-cased name (as the packaged data's
    columns are, e.g. "USDP STABLECOIN"), so no asset overwrites another.
    """
    supplies: list[tuple[str, str, float]] = []
    for asset in raw.peggedAssets:
        supply = asset.circulating.get(asset.pegType)
        if supply is None:
            continue
        if asset.pegType != "peggedUSD":
            if asset.price is None:
                continue
            supply *= asset.price
        supplies.append((asset.symbol.strip().upper(), asset.name.strip().upper(), supply))
    supplies.sort(key=lambda s: -s[2])
    values: dict[str, float] = {}
    for symbol, name, supply in supplies:
        entity = name if symbol in values else symbol
        values[entity] = values.get(entity, 0.0) + supply
    if values:
        values["all_stablecoins"] = sum(s[2] for s in supplies)
    return [
        MetricPoint(
            entity=entity, metric="supply_usd", date=day, value=value, unit="USD", source=source
        )
        for entity, value in values.items()
    ]


class DefiLlamaConnector:
    """DefiLlama TVL and stablecoin endpoints over the shared HTTP client."""

    name = "defillama"

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        stablecoins_url: str = DEFAULT_STABLECOINS_URL,
        *,
        policy: RetryPolicy | None = None,
        timeout_s: float = 20.0,
        today: Callable[[], date] = utc_today,
    ) -> None:
        policy = policy or RetryPolicy()
        self.api = JsonApi(self.name, base_url, policy=policy, timeout=timeout_s)
        self.stable_api = JsonApi(
            f"{self.name}-stablecoins", stablecoins_url, policy=policy, timeout=timeout_s
        )
        self.today = today

    def close(self) -> None:
        """Release the HTTP clients."""
        self.api.close()
        self.stable_api.close()

    def fetch_chains(self) -> list[MetricPoint]:
        """Today's TVL of every chain."""
        rows = self._list(self.api.get("v2/chains"), "v2/chains")
        day = self.today()
        out = []
        for chain in self._validate(rows, LlamaChain):
            out.append(
                MetricPoint(
                    entity=chain.name.lower(),
                    metric="tvl_usd",
                    date=day,
                    value=chain.tvl,
                    unit="USD",
                    source=self.name,
                )
            )
        return out

    def fetch_chain_tvl(self, chains: Sequence[str]) -> list[MetricPoint]:
        """Daily TVL history of each chain in `chains`."""
        out: list[MetricPoint] = []
        for chain in chains:
            path = f"v2/historicalChainTvl/{chain}"
            rows = self._list(self.api.get(path), path)
            out.extend(
                parse_tvl_point(p, chain, self.name) for p in self._validate(rows, LlamaTvlPoint)
            )
        return out

    def fetch_stablecoins(self) -> list[MetricPoint]:
        """Today's circulating supply of each stablecoin in USD and of all of them."""
        body = self.stable_api.get("stablecoins", {"includePrices": "true"})
        try:
            raw = LlamaStablecoins.model_validate(body)
        except ValidationError as exc:
            raise TemporaryError(f"{self.name} stablecoins: unexpected payload: {exc}") from exc
        return parse_stablecoins(raw, self.today(), self.name)

    def _list(self, body: object, what: str) -> list[object]:
        if not isinstance(body, list):
            raise TemporaryError(f"{self.name} {what}: expected a list")
        return body

    @staticmethod
    def _validate(rows: list[object], model: type[M]) -> list[M]:
        out: list[M] = []
        for row in rows:
            try:
                out.append(model.model_validate(row))
            except ValidationError:
                continue  # one malformed chain/point is skipped; the others still count
        return out
