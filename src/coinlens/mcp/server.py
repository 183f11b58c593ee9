"""The Coinlens MCP server: research tools for AI assistants over stdio or streamable HTTP.

Every tool is a thin call to the same `coinlens.services` functions the REST API uses,
with a `Context` built from settings; answers are the API's JSON shapes. A service that
is not installed yet makes its tool answer "not available yet" instead of failing the
whole server. Domain errors become tool errors the model can read (not found, invalid
input, data unavailable — not computed yet, or never for this token); anything else is
logged and reported as an internal error.

Creating alerts acts as an API key (`--api-key` / `COINLENS_MCP_API_KEY`) with the
`alerts:write` scope: the rules belong to that key, exactly as if created over REST.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, ValidationError

from coinlens import __version__
from coinlens.alerts.rules import (
    MAX_CHANNELS,
    AlertRuleCreate,
    Direction,
    GradeName,
    QuietHours,
    RuleKind,
    SignalTarget,
    Window,
)
from coinlens.domain.errors import CoinlensError, DataUnavailable, TemporaryError, UserInputError
from coinlens.domain.grades import Band
from coinlens.domain.numbers import tidy
from coinlens.services.context import Context

T = TypeVar("T")
Symbol = Annotated[str, Field(min_length=1, max_length=32, description="Token symbol, e.g. ETH")]
INSTRUCTIONS = """Coinlens crypto research data (daily candles, signals, grades, forecasts).
Start with `token_summary` for one token or `screener` to find tokens; numbers carry their
`source` and `as_of` — quote them. Prices are USD(T); grades are 0-100; probabilities 0-1."""
HISTORY_POINTS = 30  # grade history points and signal flips returned (the newest)
SCREEN_PAGE = 500  # rows per page when the screener walks the leaderboard and the signals


def _service(name: str) -> ModuleType:
    """`coinlens.services.<name>`, or a tool error when that service is not installed."""
    try:
        return importlib.import_module(f"coinlens.services.{name}")
    except ImportError as exc:
        raise ToolError(f"{name} is not available yet on this server") from exc


def _run(fn: Callable[[], T]) -> T:
    """Call a service, turning domain errors into messages for the model."""
    try:
        return fn()
    except DataUnavailable as exc:
        raise ToolError(f"unavailable: {exc.detail}") from exc
    except UserInputError as exc:
        raise ToolError(exc.detail) from exc
    except TemporaryError as exc:
        raise ToolError(f"temporarily unavailable, retry later: {exc.detail}") from exc
    except CoinlensError as exc:
        raise ToolError(f"{exc.title}: {exc.detail}") from exc


def _json(value: Any) -> Any:
    """A service answer as JSON, floats rounded to 15 significant digits like the API's."""
    if isinstance(value, BaseModel):
        return tidy(value.model_dump(mode="json"))
    if isinstance(value, list):
        return [_json(v) for v in value]
    return tidy(value)


def _dump(value: Any) -> dict[str, Any]:
    """A service answer (a pydantic model) as the JSON object the tool returns."""
    dumped = _json(value)
    if not isinstance(dumped, dict):
        raise ToolError("internal error: the service answered an unexpected shape")
    return dumped


def _problems(exc: ValidationError) -> str:
    """`field: reason; …` of a pydantic error, without the rejected values (channel secrets)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'rule'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False, include_input=False)
    )


def _every(fetch: Callable[[str | None], Any]) -> tuple[Any, list[Any]]:
    """The first page of a cursor-paginated listing and the items of all its pages."""
    first, cursor, items = None, None, []
    while first is None or cursor:
        page = _run(partial(fetch, cursor))
        first, cursor = first or page, page.next_cursor
        items += page.items
    return first, items


def _optional(fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """(answer, None) or (None, why) — for the parts of a summary that may be missing."""
    try:
        return _json(_run(fn)), None
    except ToolError as exc:
        return None, str(exc)


class CoinlensTools:
    """The tools, bound to one context (and optionally the key that owns created alerts)."""

    def __init__(self, ctx: Context, api_key: str | None = None) -> None:
        self.ctx, self.api_key = ctx, api_key

    def token_summary(self, symbol: Symbol) -> dict[str, Any]:
        """One token at a glance: metadata, markets, current signal, grades and levels.

        Parts that are unavailable (not computed yet, or never for this token) are listed in
        `unavailable` with the reason.
        """
        catalog, aq = _service("catalog"), _service("analytics_queries")
        token = _dump(_run(lambda: catalog.get_token(self.ctx, symbol)))
        parts: dict[str, Callable[[], Any]] = {
            "signal": lambda: aq.get_signals(self.ctx, symbol),
            "levels": lambda: aq.get_levels(self.ctx, symbol),
            "roi": lambda: aq.get_roi(self.ctx, symbol),
            # current grades only: a history window that starts after any stored day
            "grades": lambda: _service("grades").get_grades(self.ctx, symbol, dt.date.max),
        }
        summary: dict[str, Any] = {"token": token, "unavailable": {}}
        for name, fetch in parts.items():
            summary[name], why = _optional(fetch)
            if why is not None:
                summary["unavailable"][name] = why
        if isinstance(summary.get("signal"), dict):
            summary["signal"]["history"] = summary["signal"]["history"][-5:]
        return summary

    def screener(
        self,
        signal: Literal["long", "flat", "short"] | None = None,
        band: Annotated[Band | None, Field(description="Grade band of `sort`")] = None,
        sector: Annotated[
            str | None,
            Field(
                description="Sector name in any case, e.g. 'DeFi Blue Chips'; an unknown one "
                "is an error that lists the known sectors"
            ),
        ] = None,
        sort: Literal["trader", "investor"] = "trader",
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """Tokens ranked by Trader or Investor grade, filtered by grade band, signal and sector."""
        grades, aq = _service("grades"), _service("analytics_queries")
        why = _service("catalog").unknown_sector(self.ctx, sector)
        if why is not None:  # not an empty screen the model would take for "nothing qualifies"
            raise ToolError(why)

        def board_page(cursor: str | None, size: int) -> Any:
            query = grades.LeaderboardQuery(
                sector=sector, band=band, sort=sort, cursor=cursor, limit=size
            )
            return grades.leaderboard(self.ctx, query)

        if signal is None:  # the first `limit` of the ranking, and how many match in all
            board = _run(lambda: board_page(None, limit))
            rows, matches = [_json(e) for e in board.items], board.total
        else:  # every ranked token against every token with that signal, page by page
            board, entries = _every(lambda c: board_page(c, SCREEN_PAGE))
            _, signalled = _every(
                lambda c: aq.list_signals(
                    self.ctx, signal=signal, sector=sector, cursor=c, limit=SCREEN_PAGE
                )
            )
            wanted = {s.symbol: s for s in signalled}
            rows = [
                dict(_json(e), signal=wanted[e.symbol].signal)
                for e in entries
                if e.symbol in wanted
            ]
            matches = len(rows)
        return {
            "day": board.day.isoformat(),
            "sort": sort,
            "filters": {"signal": signal, "band": band, "sector": sector},
            "matches": matches,
            "items": rows[:limit],
            "source": board.source,
        }

    def signals(self, symbol: Symbol) -> dict[str, Any]:
        """The token's current long/flat/short signal, its score and indicators, and its
        newest 30 flips (`history`, oldest first; `history_total` counts them all)."""
        aq = _service("analytics_queries")
        result = _dump(_run(lambda: aq.get_signals(self.ctx, symbol)))
        # every flip since 2017 is ~10k tokens of context for BTC: keep the recent ones
        result["history_total"] = len(result["history"])
        result["history"] = result["history"][-HISTORY_POINTS:]
        return result

    def backtest(
        self,
        symbol: Symbol,
        fee: Annotated[
            float | None,
            Field(ge=0, le=0.05, description="Fee per trade as a fraction (0.001 = 0.1%, default)"),
        ] = None,
        slippage: Annotated[
            float | None,
            Field(ge=0, le=0.05, description="Slippage per fill as a fraction (default 0.0005)"),
        ] = None,
        start: Annotated[
            dt.date | None, Field(description="First day, YYYY-MM-DD (UTC; default: first close)")
        ] = None,
        end: Annotated[
            dt.date | None, Field(description="Last day, YYYY-MM-DD (UTC; default: last close)")
        ] = None,
    ) -> dict[str, Any]:
        """Backtest of the signal vs buy-and-hold (long-only, next-bar fills); no equity curve."""
        aq = _service("analytics_queries")
        perf = _run(
            lambda: aq.get_signal_performance(
                self.ctx, symbol, fee=fee, slippage=slippage, start=start, end=end
            )
        )
        return _dump(perf.model_dump(mode="json", exclude={"equity"}))

    def grades(self, symbol: Symbol) -> dict[str, Any]:
        """Trader and Investor grades (0-100) with sub-grades that add up, and recent history."""
        grades = _service("grades")
        result = _dump(_run(lambda: grades.get_grades(self.ctx, symbol)))
        result["history"] = result["history"][-HISTORY_POINTS:]
        return result

    def predictions(self, symbol: Symbol) -> dict[str, Any]:
        """Quantile forecasts (p05…p95) of the close at 1/7/30/90 days, with the model used."""
        forecasts = _service("forecasts")
        return _dump(_run(lambda: forecasts.get_predictions(self.ctx, symbol)))

    def scenarios(self, symbol: Symbol) -> dict[str, Any]:
        """Bear/base/bull price targets (p10/p50/p90) per horizon, each placed among the key
        support/resistance levels it crosses and the next level past it."""
        forecasts = _service("forecasts")
        return _dump(_run(lambda: forecasts.get_scenarios(self.ctx, symbol)))

    def probability(
        self,
        symbol: Symbol,
        level: Annotated[float, Field(gt=0, description="Price level in the quote (USD/USDT)")],
        by: Annotated[
            dt.date,
            Field(description="Date YYYY-MM-DD (UTC), after the forecast origin, within a year"),
        ],
        direction: Literal["above", "below"] = "above",
    ) -> dict[str, Any]:
        """Chance the close is above (or below) `level` on date `by` (p_at) and by then (p_by)."""
        forecasts = _service("forecasts")
        above = direction == "above"
        answer = _run(lambda: forecasts.probability(self.ctx, symbol, level, by, above=above))
        return _dump(answer)

    def levels(self, symbol: Symbol) -> dict[str, Any]:
        """Nearest support below and resistance above the last close, strongest levels first."""
        aq = _service("analytics_queries")
        return _dump(_run(lambda: aq.get_levels(self.ctx, symbol)))

    def ecosystem(
        self,
        chain: Annotated[
            str | None,
            Field(description="Chain name in any case, e.g. ethereum, arbitrum; omit to list them"),
        ] = None,
        days: Annotated[int, Field(ge=1, le=365, description="Daily points per series")] = 30,
    ) -> dict[str, Any]:
        """Without `chain`: chains by TVL with growth, gas and L2 share. With it: that chain's
        TVL/gas/activity series, each its newest `days` daily points (series end at different
        dates: each says its `first` and `last`)."""
        eco = _service("ecosystem")
        if chain is None:
            return _dump(_run(lambda: eco.list_chains(self.ctx, limit=50)))
        detail = _dump(_run(lambda: eco.get_chain(self.ctx, chain, limit=eco.MAX_LIMIT)))
        for series in detail["series"]:
            series["points"] = series["points"][-days:]
            series["first"] = series["points"][0]["date"] if series["points"] else None
        return detail

    # Flat arguments, one per field of `AlertRuleCreate` (the REST body), so the model sees
    # each with its type and choices; a test keeps the two in step.
    def create_alert(
        self,
        symbol: Symbol,
        kind: Annotated[RuleKind, Field(description="What the rule watches (see above)")],
        channels: Annotated[
            list[str], Field(min_length=1, max_length=MAX_CHANNELS, description="Apprise URLs")
        ],
        direction: Direction | None = None,
        level: Annotated[float | None, Field(gt=0, description="Price level")] = None,
        window: Window | None = None,
        threshold: Annotated[
            float | None, Field(description="% change, grade (0-100) or probability (0-1)")
        ] = None,
        grade: GradeName | None = None,
        points: Annotated[
            float | None, Field(gt=0, le=100, description="Grade points moved")
        ] = None,
        signal: SignalTarget | None = None,
        target: Annotated[float | None, Field(gt=0, description="Price target")] = None,
        horizon_days: Annotated[
            int | None, Field(ge=1, le=365, description="Days to reach the target")
        ] = None,
        cooldown_seconds: Annotated[
            int | None, Field(ge=0, description="Seconds between firings (default 3600)")
        ] = None,
        expires_at: Annotated[
            dt.datetime | None, Field(description="When the rule stops (future, with offset)")
        ] = None,
        timezone: Annotated[str | None, Field(description="IANA zone of the owner")] = None,
        quiet_hours: Annotated[
            QuietHours | None, Field(description="Daily window (owner's zone) without deliveries")
        ] = None,
        note: Annotated[str | None, Field(max_length=200)] = None,
    ) -> dict[str, Any]:
        """Create an alert rule owned by the server's API key. Each kind's fields:
        price_cross (direction above/below, level), pct_change (direction above/below/either,
        window, threshold %), grade_cross (direction, grade, threshold 0-100), grade_move
        (grade, points), signal_flip (signal), level_break (direction), probability_cross
        (direction, target, horizon_days, threshold 0-1). Channels are apprise URLs, e.g. a
        webhook `json://host/path` or `mailto://…`."""
        alerts = _service("alerts")
        owner = self._owner()
        given: dict[str, object] = {
            "direction": direction, "level": level, "window": window, "threshold": threshold,
            "grade": grade, "points": points, "signal": signal, "target": target,
            "horizon_days": horizon_days, "cooldown_seconds": cooldown_seconds,
            "expires_at": expires_at, "timezone": timezone, "quiet_hours": quiet_hours,
            "note": note,
        }  # fmt: skip
        fields = {k: v for k, v in given.items() if v is not None}
        try:
            body = AlertRuleCreate.model_validate(
                {"symbol": symbol, "kind": kind, "channels": channels, **fields}
            )
        except ValidationError as exc:  # the message names fields, never echoes the input
            raise ToolError(f"invalid alert rule: {_problems(exc)}") from None
        return _dump(_run(lambda: alerts.create_rule(self.ctx, owner, body)))

    def _owner(self) -> int:
        if not self.api_key:
            raise ToolError(
                "creating alerts needs an API key with the alerts:write scope: start the server "
                "with --api-key or COINLENS_MCP_API_KEY"
            )
        keys = _service("keys")
        principal = _run(lambda: keys.KeyVerifier(self.ctx).verify(self.api_key))
        if "alerts:write" not in principal.scopes:
            raise ToolError("the server's API key lacks the alerts:write scope")
        return int(principal.key_id)

    def register(self, server: MCPServer[Any]) -> None:
        """Add every tool to `server`."""
        for fn in (
            self.token_summary,
            self.screener,
            self.signals,
            self.backtest,
            self.grades,
            self.predictions,
            self.scenarios,
            self.probability,
            self.levels,
            self.ecosystem,
            self.create_alert,
        ):
            server.add_tool(fn, structured_output=True)


class _Server(MCPServer[Any]):
    """`MCPServer` whose argument errors name each field and its problem, without pydantic's
    echo of the rejected values (alert channel URLs carry secrets) or its help links."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if type(exc) is not ToolError or not isinstance(cause, ValidationError):
                raise
            message = f"Error executing tool {name}: invalid arguments: {_problems(cause)}"
            raise ToolError(message) from cause  # the SDK logs the field names only


def build_server(ctx: Context, *, api_key: str | None = None) -> MCPServer[Any]:
    """The MCP server with every Coinlens tool bound to `ctx`."""
    server: MCPServer[Any] = _Server(
        "coinlens", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )
    CoinlensTools(ctx, api_key).register(server)
    return server
