"""A local HTTP server on 127.0.0.1 playing Binance, Coinbase, Kraken, OKX, CoinGecko,
DefiLlama and Etherscan, with each venue's paging semantics and injectable faults.

Exchange requests arrive host-prefixed (ccxt's URLs rewritten by `point_at`):
``/api.binance.com/api/v3/klines``. The JSON APIs live under ``/coingecko``, ``/llama``,
``/stablecoins`` and ``/etherscan``. Candles come from one neutral series per venue
([open_ms, o, h, l, c, v], served in the order stored so tests control duplicates/order).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:
    import venue_payloads as vp
except ImportError:  # imported from tests/integration, where tests/contract is not on sys.path
    from contract import venue_payloads as vp

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
"""The venues' clock: mid-day, so the 2025-01-10 daily candle is still in progress."""
NOW_MS = int(NOW.timestamp() * 1000)
SERIES_START_MS = NOW_MS - 12 * HOUR_MS - 40 * DAY_MS  # 2024-12-01 00:00 UTC
STEPS = {
    "1d": DAY_MS,
    "1h": HOUR_MS,
    "1440": DAY_MS,
    "60": HOUR_MS,
    "ONE_DAY": DAY_MS,
    "ONE_HOUR": HOUR_MS,
    "1Dutc": DAY_MS,
    "1H": HOUR_MS,
}


@dataclass
class Fault:
    """Answer the next `times` requests whose path contains `match` with a failure."""

    match: str
    kind: str  # "429", "500", "timeout", "malformed", "418"
    times: int = 1
    retry_after: str | None = "1"


def daily_series(start_ms: int, days: int, base: float = 3000.0) -> list[list[Any]]:
    """A clean daily series: [open_ms, open, high, low, close, volume]."""
    rows = []
    for i in range(days):
        o = base + i * 10
        c = o + 5
        rows.append([start_ms + i * DAY_MS, o, c + 20, o - 20, c, 1000.0 + i])
    return rows


@dataclass
class State:
    now_ms: int
    series: dict[str, list[list[Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay_s: float = 1.0

    def next_fault(self, path: str) -> Fault | None:
        with self.lock:
            self.log.append(path)
            for fault in self.faults:
                if fault.match in path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def count(self, needle: str) -> int:
        return sum(needle in p for p in self.log)


def _window(rows: list[list[Any]], lo: int | None, hi: int | None) -> list[list[Any]]:
    return [r for r in rows if (lo is None or r[0] >= lo) and (hi is None or r[0] <= hi)]


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def do_GET(self) -> None:
        fault = self.state.next_fault(self.path)
        if fault is not None and self._fault(fault):
            return
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            status, body = route(self.state, url.path, q)
        except KeyError as exc:
            status, body = 400, {"error": f"missing {exc}"}
        self._send(status, json.dumps(body).encode())

    def _fault(self, fault: Fault) -> bool:
        if fault.kind in ("429", "418"):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(int(fault.kind), b'{"code":-1003,"msg":"Too many requests."}', headers)
        elif fault.kind == "500":
            self._send(503, b"<html>Service Unavailable</html>")
        elif fault.kind == "timeout":
            time.sleep(self.state.delay_s)
            return False  # answer late (the client has given up by then)
        elif fault.kind == "malformed":
            self._send(200, b'{"truncated": [1, 2,')
        return True


def route(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    host, _, rest = path.lstrip("/").partition("/")
    handler = ROUTES.get(host)
    if handler is None:
        return 404, {"error": f"no venue {host}"}
    return handler(st, "/" + rest, q)


def _binance(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path == "/api/v3/exchangeInfo":
        return 200, vp.BINANCE_EXCHANGE_INFO
    if path == "/api/v3/klines":
        step = STEPS[q["interval"]]
        start = int(q.get("startTime", 0))
        rows = [r for r in st.series["binance"] if r[0] >= start]
        if "endTime" in q:
            rows = [r for r in rows if r[0] <= int(q["endTime"])]
        return 200, vp.binance_klines(rows[: int(q.get("limit", 500))], step)
    if path == "/api/v3/ticker/24hr":
        return 200, vp.binance_ticker(q["symbol"], st.now_ms)
    return 404, {"code": -1, "msg": f"no route {path}"}


def _binance_futures(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    return 200, vp.BINANCE_FUTURES_INFO


def _coinbase(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    prefix = "/api/v3/brokerage/market/products"
    if path == prefix:
        if q.get("product_type") == "FUTURE":
            return 200, {"products": [], "num_products": 0}
        return 200, vp.COINBASE_PRODUCTS
    if path.endswith("/candles"):
        start, end = int(q["start"]) * 1000, int(q["end"]) * 1000
        if (end - start) // STEPS[q["granularity"]] > 350:
            return 400, {"error": "INVALID_ARGUMENT", "message": "number of candles exceeds 350"}
        # the real end bound is exclusive: a start..end window of N steps yields N candles
        rows = [r for r in _window(st.series["coinbase"], start, None) if r[0] < end]
        return 200, vp.coinbase_candles(rows)
    if path.endswith("/ticker"):
        return 200, vp.coinbase_ticker(path.split("/")[-2], st.now_ms)
    return 404, {"error": "NOT_FOUND"}


def _kraken(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path == "/0/public/AssetPairs":
        return 200, vp.KRAKEN_ASSET_PAIRS
    if path == "/0/public/OHLC":
        since = int(q.get("since", 0)) * 1000
        newest = st.series["kraken"][-720:]  # only the newest 720 candles, whatever `since`
        return 200, vp.kraken_ohlc(q["pair"], [r for r in newest if r[0] > since])
    if path == "/0/public/Ticker":
        return 200, vp.kraken_ticker(q["pair"])
    return 404, {"error": ["EGeneral:Unknown method"]}


def _okx(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path == "/api/v5/public/instruments":
        return 200, vp.OKX_INSTRUMENTS if q["instType"] == "SPOT" else vp.OKX_EMPTY
    if path in ("/api/v5/market/candles", "/api/v5/market/history-candles"):
        step = STEPS[q["bar"]]
        before, after = int(q.get("before", -1)), int(q.get("after", 2**62))
        rows = [r for r in st.series["okx"] if before < r[0] < after]
        newest_first = sorted(rows, key=lambda r: r[0], reverse=True)[: int(q.get("limit", 100))]
        return 200, vp.okx_candles(newest_first, st.now_ms, step)
    if path == "/api/v5/market/ticker":
        return 200, vp.okx_ticker(q["instId"], st.now_ms)
    return 404, {"code": "50000", "msg": "not found", "data": []}


def _coingecko(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path == "/api/v3/coins/markets":
        rows = vp.COINGECKO_MARKETS
        if "ids" in q:
            rows = [r for r in rows if r["id"] in q["ids"].split(",")]
        return 200, rows if q.get("page", "1") == "1" else []
    return 404, {"error": "not found"}


def _llama(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    if path == "/v2/chains":
        return 200, vp.LLAMA_CHAINS
    if path.startswith("/v2/historicalChainTvl/"):
        return 200, vp.LLAMA_HISTORICAL_TVL
    return 404, {"error": "not found"}


def _stablecoins(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    return (200, vp.LLAMA_STABLECOINS) if path == "/stablecoins" else (404, {})


def _etherscan(st: State, path: str, q: dict[str, str]) -> tuple[int, Any]:
    if q.get("apikey") == "ratelimited":
        return 200, vp.ETHERSCAN_RATE_LIMITED
    if q.get("module") == "gastracker" and q.get("action") == "gasoracle":
        return 200, vp.ETHERSCAN_GAS
    if q.get("module") == "stats" and q.get("action") == "dailytx":
        return 200, vp.ETHERSCAN_DAILY_TX
    return 200, {"status": "0", "message": "NOTOK", "result": "Error! Invalid action"}


ROUTES = {
    "coingecko": _coingecko,
    "llama": _llama,
    "stablecoins": _stablecoins,
    "etherscan": _etherscan,
    "api.binance.com": _binance,
    "fapi.binance.com": _binance_futures,
    "api.coinbase.com": _coinbase,
    "api.kraken.com": _kraken,
    "www.okx.com": _okx,
}


class SleepLog:
    """A fake sleep recording the waits a retry policy asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FakeVenues:
    """The running server: `base` URL, mutable `state`."""

    def __init__(self, now_ms: int) -> None:
        self.state = State(now_ms=now_ms)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, series: list[list[Any]]) -> None:
        """Every exchange serves `series`; faults and the request log are cleared."""
        with self.state.lock:
            self.state.series = {v: list(series) for v in ("binance", "coinbase", "kraken", "okx")}
            self.state.faults.clear()
            self.state.log.clear()
