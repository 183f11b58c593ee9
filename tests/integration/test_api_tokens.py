"""The HTTP API over a seeded catalog, on SQLite and PostgreSQL: tokens, OHLCV, problems, probes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coinlens.api.app import create_app
from coinlens.api.routes import health
from coinlens.domain.errors import CoinlensError, ConfigError, RateLimited, TemporaryError
from coinlens.services.context import Context
from coinlens.services.keys import new_plaintext
from coinlens.settings import get_settings
from coinlens.storage import repo

PROBLEM_JSON = "application/problem+json"
DAY0 = datetime(2017, 8, 17, tzinfo=UTC)
ETH_SPOT, ETH_PERP, PEPE_PERP = (
    "binance:spot:ETHUSDT",
    "binance:perp:ETHUSDT",
    "binance:perp:1000PEPEUSDT",
)
ETH_DAYS, ETH_PERP_DAYS, ETH_HOURS, PEPE_DAYS = 45, 10, 48, 5

TOKENS: list[tuple[str, str, str | None]] = [
    ("AAVE", "Aave", "DeFi"),
    ("ADA", "Cardano", "Smart Contract Platform"),
    ("BNB", "BNB", "Exchange"),
    ("BTC", "Bitcoin", "Currency"),
    ("DOGE", "Dogecoin", "Meme"),
    ("ETH", "Ethereum", "Smart Contract Platform"),
    ("LINK", "Chainlink", "Oracle"),
    ("PEPE", "Pepe", "Meme"),
    ("SHIB", "Shiba Inu", "Meme"),
    ("SOL", "Solana", "Smart Contract Platform"),
    ("UNI", "Uniswap", "DeFi"),
    ("USDT", "Tether", "Stablecoin"),
    ("XRP", "XRP", None),
]


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _candles(n: int, step: timedelta, base: float) -> list[dict[str, Any]]:
    return [
        {
            "open_time": _epoch(DAY0 + i * step),
            "open": base + i,
            "high": base + i + 2,
            "low": base + i - 1,
            "close": base + i + 1,
            "volume": 100.0,
            "quote_volume": 100.0 * base,
            "trades": 10 + i,
        }
        for i in range(n)
    ]


def _token_row(symbol: str, name: str, sector: str | None) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "name": name,
        "sector": sector,
        "categories": ["Layer 1", "Smart Contracts"] if symbol == "ETH" else [],
        "coingecko_id": name.lower().replace(" ", "-"),
        "is_stablecoin": symbol == "USDT",
        "circulating_supply": 120_000_000.0 if symbol == "ETH" else None,
        "max_supply": None,
    }


def _market(key: str, token_id: int, instrument: str, multiplier: float) -> dict[str, Any]:
    return {
        "market_key": key,
        "token_id": token_id,
        "exchange": "binance",
        "pair": key.rsplit(":", 1)[-1],
        "quote": "USDT",
        "instrument": instrument,
        "contract_multiplier": multiplier,
        "source": f"test fixture ({instrument})",
    }


def seed(ctx: Context) -> None:
    """ETH with a spot (primary) and a perp market, PEPE on a 1000× perp, USDT without candles."""
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(conn, [_token_row(*t) for t in TOKENS])
        markets = repo.upsert_markets(
            conn,
            [
                _market(ETH_SPOT, ids["ETH"], "spot", 1.0),
                _market(ETH_PERP, ids["ETH"], "perp", 1.0),
                _market(PEPE_PERP, ids["PEPE"], "perp", 1000.0),
            ],
        )
        day, hour = timedelta(days=1), timedelta(hours=1)
        repo.write_candles(conn, markets[ETH_SPOT], "1d", _candles(ETH_DAYS, day, 300.0))
        repo.write_candles(conn, markets[ETH_SPOT], "1h", _candles(ETH_HOURS, hour, 300.0))
        repo.write_candles(conn, markets[ETH_PERP], "1d", _candles(ETH_PERP_DAYS, day, 301.0))
        repo.write_candles(conn, markets[PEPE_PERP], "1d", _candles(PEPE_DAYS, day, 12.0))
        repo.refresh_token_spans(conn)


@pytest.fixture
def client(ctx: Context, api_headers: Callable[..., dict[str, str]]) -> Iterator[TestClient]:
    """A started app (lifespan run) over the seeded, parametrised database, sending a key."""
    seed(ctx)
    with TestClient(create_app(ctx.settings), headers=api_headers(ctx)) as test_client:
        yield test_client


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()
    return body


# --- tokens --------------------------------------------------------------------------------


def test_search_matches_symbol_or_name_in_any_case(client: TestClient) -> None:
    by_symbol = client.get("/v1/tokens", params={"q": "eTh"}).json()
    by_name = client.get("/v1/tokens", params={"q": "COIN"}).json()
    wildcard = client.get("/v1/tokens", params={"q": "%"}).json()

    assert [t["symbol"] for t in by_symbol["items"]] == ["ETH", "USDT"]  # "Tether" has "eth"
    assert [t["symbol"] for t in by_name["items"]] == ["BTC", "DOGE"]
    assert wildcard["items"] == []
    assert wildcard["total"] == 0


def test_sector_filter_is_case_insensitive(client: TestClient) -> None:
    page = client.get("/v1/tokens", params={"sector": "meme"}).json()

    assert [t["symbol"] for t in page["items"]] == ["DOGE", "PEPE", "SHIB"]
    assert page["total"] == 3


def test_token_list_carries_spans_and_provenance(client: TestClient) -> None:
    page = client.get("/v1/tokens", params={"q": "ethereum"}).json()

    (eth,) = page["items"]
    assert eth["primary_market"] == ETH_SPOT
    assert eth["first_candle"] == "2017-08-17T00:00:00Z"
    assert eth["last_candle"] == "2017-09-30T00:00:00Z"
    assert page["source"]
    assert page["as_of"] == "2017-09-30T00:00:00Z"


def test_cursor_pagination_walks_every_token_exactly_once(client: TestClient) -> None:
    seen: list[str] = []
    links: list[str] = []
    params: dict[str, Any] = {"limit": 5}

    while True:
        response = client.get("/v1/tokens", params=params)
        page = response.json()
        assert page["total"] == len(TOKENS)
        seen += [t["symbol"] for t in page["items"]]
        if page["next_cursor"] is None:
            assert "link" not in response.headers
            break
        links.append(response.headers["link"])
        params = {"limit": 5, "cursor": page["next_cursor"]}

    assert seen == sorted(t[0] for t in TOKENS)
    assert len(links) == 2
    assert all(link.endswith('>; rel="next"') and "cursor=" in link for link in links)


def test_cursor_pagination_respects_filters(client: TestClient) -> None:
    first = client.get("/v1/tokens", params={"sector": "Meme", "limit": 2}).json()
    second = client.get(
        "/v1/tokens", params={"sector": "Meme", "limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert [t["symbol"] for t in first["items"] + second["items"]] == ["DOGE", "PEPE", "SHIB"]
    assert second["next_cursor"] is None


def test_token_detail_lists_markets_primary_first(client: TestClient) -> None:
    eth = client.get("/v1/tokens/eth").json()

    assert eth["symbol"] == "ETH"
    assert eth["categories"] == ["Layer 1", "Smart Contracts"]
    assert eth["coingecko_id"] == "ethereum"
    assert eth["supply"] == {"circulating": 120_000_000.0, "total": None, "max": None}
    assert [m["market_key"] for m in eth["markets"]] == [ETH_SPOT, ETH_PERP]
    spot = eth["markets"][0]
    assert spot["is_primary"] is True
    assert {c["timeframe"]: c["count"] for c in spot["coverage"]} == {
        "1d": ETH_DAYS,
        "1h": ETH_HOURS,
    }
    assert eth["markets"][1]["coverage"][0]["last"] == "2017-08-26T00:00:00Z"
    assert eth["as_of"] == "2017-09-30T00:00:00Z"


# --- OHLCV ---------------------------------------------------------------------------------


def test_ohlcv_defaults_to_daily_candles_of_the_primary_market(client: TestClient) -> None:
    body = client.get("/v1/tokens/ETH/ohlcv").json()

    assert body["market"] == ETH_SPOT
    assert body["timeframe"] == "1d"
    assert body["contract_multiplier"] == 1.0
    assert body["source"] == "test fixture (spot)"
    assert len(body["candles"]) == ETH_DAYS
    assert body["candles"][0]["open_time"] == "2017-08-17T00:00:00Z"
    assert body["candles"][-1]["open_time"] == "2017-09-30T00:00:00Z"
    assert body["next_cursor"] is None
    assert body["warnings"] == []


def test_ohlcv_date_range_is_inclusive(client: TestClient) -> None:
    body = client.get(
        "/v1/tokens/ETH/ohlcv", params={"start": "2017-08-20", "end": "2017-08-25"}
    ).json()

    times = [c["open_time"][:10] for c in body["candles"]]
    assert times == [f"2017-08-{d}" for d in range(20, 26)]
    assert body["start"] == "2017-08-20T00:00:00Z"
    assert body["end"] == "2017-08-25T23:59:59Z"


def test_ohlcv_hourly_end_date_covers_the_whole_day(client: TestClient) -> None:
    by_date = client.get(
        "/v1/tokens/ETH/ohlcv",
        params={"timeframe": "1h", "start": "2017-08-17", "end": "2017-08-17"},
    ).json()
    by_instant = client.get(
        "/v1/tokens/ETH/ohlcv",
        params={"timeframe": "1h", "start": "2017-08-17T05:00:00Z", "end": "2017-08-17T07:00:00"},
    ).json()

    assert len(by_date["candles"]) == 24
    assert [c["open_time"][11:13] for c in by_instant["candles"]] == ["05", "06", "07"]


def test_ohlcv_of_a_named_market(client: TestClient) -> None:
    body = client.get("/v1/tokens/ETH/ohlcv", params={"market": ETH_PERP}).json()

    assert body["market"] == ETH_PERP
    assert body["instrument"] == "perp"
    assert len(body["candles"]) == ETH_PERP_DAYS
    assert body["candles"][0]["close"] == 302.0


def test_ohlcv_divides_prices_by_the_contract_multiplier(client: TestClient) -> None:
    body = client.get("/v1/tokens/PEPE/ohlcv").json()

    first = body["candles"][0]
    assert body["market"] == PEPE_PERP
    assert body["contract_multiplier"] == 1000.0
    assert first["open"] == pytest.approx(0.012)
    assert first["high"] == pytest.approx(0.014)
    assert first["low"] == pytest.approx(0.011)
    assert first["close"] == pytest.approx(0.013)
    assert first["volume"] == pytest.approx(100_000.0)
    assert first["quote_volume"] == pytest.approx(1_200.0)


def test_ohlcv_pages_follow_the_cursor_without_gaps(client: TestClient) -> None:
    times: list[str] = []
    params: dict[str, Any] = {"limit": 20, "end": "2017-09-25"}

    while True:
        response = client.get("/v1/tokens/ETH/ohlcv", params=params)
        body = response.json()
        times += [c["open_time"] for c in body["candles"]]
        if body["next_cursor"] is None:
            break
        assert "cursor=" in response.headers["link"]
        params = {**params, "cursor": body["next_cursor"]}

    assert len(times) == len(set(times)) == ETH_DAYS - 5
    assert times == sorted(times)


def test_ohlcv_empty_range_warns(client: TestClient) -> None:
    body = client.get("/v1/tokens/ETH/ohlcv", params={"start": "2020-01-01"}).json()

    assert body["candles"] == []
    assert body["as_of"] == "2017-09-30T00:00:00Z"
    assert "no 1d candles" in body["warnings"][0]


# --- problems ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "location"),
    [
        ("/v1/tokens/NOPE", 404, None),
        ("/v1/tokens/NOPE/ohlcv", 404, None),
        ("/v1/tokens/USDT/ohlcv", 404, None),
        ("/v1/tokens/ETH/ohlcv?timeframe=5m", 422, "query.timeframe"),
        ("/v1/tokens/ETH/ohlcv?start=yesterday", 422, "query.start"),
        ("/v1/tokens/ETH/ohlcv?start=2017-09-02&end=2017-09-01", 422, "start"),
        (f"/v1/tokens/ETH/ohlcv?market={PEPE_PERP}", 422, "market"),
        ("/v1/tokens/ETH/ohlcv?cursor=garbage!", 422, "cursor"),
        ("/v1/tokens?limit=501", 422, "query.limit"),
        ("/v1/tokens?cursor=bm90LWpzb24", 422, "cursor"),
        ("/v2/nothing-here", 404, None),
    ],
)
def test_errors_are_problem_json(
    client: TestClient, url: str, status: int, location: str | None
) -> None:
    body = _problem(client.get(url), status)

    assert body["instance"] == url.split("?")[0]
    if location is not None:
        assert location in [e["location"] for e in body["errors"]]


def test_token_without_candles_says_why(client: TestClient) -> None:
    body = _problem(client.get("/v1/tokens/USDT/ohlcv"), 404)

    assert body["type"] == "urn:coinlens:problem:data-unavailable"
    assert "no markets or candles yet" in body["detail"]


def test_wrong_method_is_problem_json_with_allow(client: TestClient) -> None:
    response = client.post("/v1/tokens")

    _problem(response, 405)
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (RateLimited("venue says slow down", retry_after=2.5), 429, "venue says slow down"),
        (TemporaryError("cache busy"), 503, "cache busy"),
        (ConfigError("secret-ish setting wrong"), 500, "internal error; see the server log"),
    ],
)
def test_domain_errors_map_to_statuses(
    sqlite_ctx: Context, error: CoinlensError, status: int, detail: str
) -> None:
    app = create_app(sqlite_ctx.settings)

    @app.get("/boom")
    def boom() -> None:
        raise error

    with TestClient(app) as client:
        response = client.get("/boom")

    assert _problem(response, status)["detail"] == detail
    if status == 429:
        assert response.headers["retry-after"] == "3"


# --- probes and docs -----------------------------------------------------------------------


def test_healthz_and_readyz_answer(client: TestClient) -> None:
    health = client.get("/healthz").json()
    ready = client.get("/readyz")

    assert health == {"status": "ok", "version": health["version"]}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["revision"]


def test_readyz_is_503_when_migrations_are_behind(
    sqlite_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for code shipping a newer migration than the database has applied.
    monkeypatch.setattr(health, "migration_head", lambda: "9999_newer")

    with TestClient(create_app(sqlite_ctx.settings)) as client:
        response = client.get("/readyz")

    body = _problem(response, 503)
    assert "9999_newer" in body["detail"]


def test_unreachable_database_starts_and_reports_not_ready(tmp_path: Path) -> None:
    settings = get_settings(
        env="test",
        data_dir=tmp_path,
        database_url="postgresql://coinlens@127.0.0.1:1/coinlens?connect_timeout=2",
    )

    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz")
        ready = client.get("/readyz")
        tokens = client.get("/v1/tokens", headers={"X-API-Key": new_plaintext()[0]})

    assert health.status_code == 200
    assert "unreachable" in _problem(ready, 503)["detail"]
    assert _problem(tokens, 503)["type"] == "urn:coinlens:problem:temporary-error"


def test_openapi_documents_problems_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    docs = client.get("/docs")

    ohlcv = spec["paths"]["/v1/tokens/{symbol}/ohlcv"]["get"]
    assert set(ohlcv["responses"]) >= {"200", "404", "422"}
    for code in ("404", "422"):
        assert list(ohlcv["responses"][code]["content"]) == [PROBLEM_JSON]
    assert "ProblemDetails" in spec["components"]["schemas"]
    # every /v1 operation refuses unknown query parameters with a problem+json 422, and says so
    for path, ops in spec["paths"].items():
        for op in ops.values() if path.startswith("/v1/") else ():
            assert list(op["responses"]["422"]["content"]) == [PROBLEM_JSON], path
    assert _problem(client.get("/v1/models?limt=5"), 422)["errors"][0]["location"] == "query.limt"
    assert {t["name"] for t in spec["tags"]} == {"tokens", "health"}
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
