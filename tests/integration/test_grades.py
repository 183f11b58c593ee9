"""Grades on both databases: the run writes, is idempotent, and the leaderboard pages."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

from coinlens.domain.errors import DataUnavailable, NotFound, ValidationFailed
from coinlens.services import grades as grades_service
from coinlens.services.context import Context
from coinlens.services.grades import LeaderboardQuery, get_grades, leaderboard, run_grades
from coinlens.storage import repo

N_TOKENS, N_DAYS, DAY0 = 12, 240, 19_000  # DAY0 = 2022-01-08
SYMBOLS = ["BTC", *(f"T{i:02d}" for i in range(1, N_TOKENS))]


def _seed(ctx: Context, days: dict[str, int] | None = None) -> dict[str, int]:
    """A small SYNTHETIC universe: random walks, two sectors, monthly market caps (`days`:
    tokens whose candles stop after that many days, e.g. delisted)."""
    rng = np.random.default_rng(1)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.04, (N_TOKENS, N_DAYS)), axis=1))
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn,
            [
                {"symbol": s, "name": s, "sector": "L1" if i % 2 else "DeFi", "categories": []}
                for i, s in enumerate(SYMBOLS)
            ],
        )
        for i, s in enumerate(SYMBOLS):
            mid = repo.upsert_markets(
                conn,
                [
                    {
                        "market_key": f"synthetic:spot:{s}USDT",
                        "token_id": ids[s],
                        "exchange": "synthetic",
                        "pair": f"{s}USDT",
                        "quote": "USDT",
                        "instrument": "spot",
                        "contract_multiplier": 1.0,
                        "source": "synthetic",
                    }
                ],
            )[f"synthetic:spot:{s}USDT"]
            rows = [
                {
                    "open_time": (DAY0 + j) * 86_400,
                    "open": c,
                    "high": c * 1.02,
                    "low": c * 0.98,
                    "close": c,
                    "volume": 1e4 * (i + 1),
                }
                for j, c in enumerate(close[i].tolist()[: (days or {}).get(s, N_DAYS)])
            ]
            repo.write_candles(conn, mid, "1d", rows)
        repo.refresh_token_spans(conn)
        repo.write_market_caps(
            conn,
            [
                {
                    "token_id": ids[s],
                    "snapshot_date": date(2022, m, 1),
                    "source": "test",
                    "rank": i + 1,
                    "market_cap": 1e9 / (i + 1),
                }
                for i, s in enumerate(SYMBOLS)
                for m in range(2, 9)
            ],
        )
    return ids


def test_run_grades_writes_and_is_idempotent(ctx: Context) -> None:
    ids = _seed(ctx)
    first = run_grades(ctx)
    assert first.written == first.days > 100
    assert first.rows > first.days * 5
    again = run_grades(ctx)
    assert (again.written, again.unchanged, again.rows) == (0, first.days, 0)

    # A changed candle near the end rewrites only the days whose grades it moves.
    last = (DAY0 + N_DAYS - 1) * 86_400
    with ctx.engine.begin() as conn:
        market = repo.market_ids(conn, ["synthetic:spot:T03USDT"])["synthetic:spot:T03USDT"]
        row = {"open_time": last, "open": 1, "high": 99, "low": 1, "close": 99, "volume": 1e9}
        repo.write_candles(conn, market, "1d", [row])
    third = run_grades(ctx)
    assert 1 <= third.written <= 3
    history = get_grades(ctx, "t03")
    assert history.symbol == "T03"
    assert history.history[-1].day == date(1970, 1, 1) + np.timedelta64(N_DAYS - 1 + DAY0, "D")
    assert ids["T03"] > 0


@pytest.mark.parametrize("parts", [2, 3])
def test_day_parts_store_what_one_run_stores(ctx: Context, parts: int) -> None:
    _seed(ctx)
    reports = [run_grades(ctx, part=k, parts=parts) for k in reversed(range(parts))]
    assert sum(r.days for r in reports) > 100
    assert all(r.written == r.days for r in reports)

    whole = run_grades(ctx)  # one run over every day finds nothing to rewrite or drop

    assert (whole.written, whole.dropped) == (0, 0)
    assert whole.unchanged == sum(r.days for r in reports)


def test_writes_in_batches_store_what_one_write_stores(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(ctx)
    monkeypatch.setattr(grades_service, "WRITE_BATCH", 50)  # a batch every few days
    batched = run_grades(ctx)
    with ctx.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT COUNT(*), COUNT(DISTINCT day) FROM grades")).one()
    assert tuple(stored) == (batched.rows, batched.days)
    monkeypatch.undo()
    again = run_grades(ctx)  # one unbatched run agrees with every stored digest
    assert (again.written, again.unchanged) == (0, batched.days)


def test_token_grades_add_up(ctx: Context) -> None:
    _seed(ctx)
    run_grades(ctx)
    g = get_grades(ctx, "BTC", start=date(2022, 6, 1), end=date(2022, 6, 30))
    assert len(g.history) == 30
    assert g.trader is not None
    assert sum(s.contribution for s in g.trader.sub_grades) == pytest.approx(
        g.trader.grade, abs=0.03
    )
    with pytest.raises(NotFound):
        get_grades(ctx, "NOPE")


def test_grades_of_a_token_whose_prices_stopped_say_they_are_not_current(ctx: Context) -> None:
    _seed(ctx, days={"T05": N_DAYS - 40})
    run_grades(ctx)
    gone, live = get_grades(ctx, "T05"), get_grades(ctx, "T04")

    last = date(1970, 1, 1) + np.timedelta64(DAY0 + N_DAYS - 41, "D")
    newest = date(1970, 1, 1) + np.timedelta64(DAY0 + N_DAYS - 1, "D")
    assert (gone.day, live.day) == (last, newest)
    assert any(
        f"from {last}, 40 days before the newest graded day {newest}" in w for w in gone.warnings
    )
    assert not any("newest graded day" in w for w in live.warnings)


def test_a_newly_graded_day_publishes_each_band_move_once(ctx: Context) -> None:
    from coinlens.analytics.grades import band_of
    from coinlens.services import events

    _seed(ctx, days=dict.fromkeys(SYMBOLS, N_DAYS - 1))
    first = run_grades(ctx)  # a first load: the whole history, no events
    _seed(ctx)  # one more day for every token
    bus = events.bus_for(ctx.settings)
    head = bus.head()
    new_day = run_grades(ctx)
    again = run_grades(ctx)  # nothing new: nothing published

    moves = []
    for symbol in SYMBOLS:
        hist = get_grades(ctx, symbol).history
        if len(hist) >= 2:
            for kind in ("trader", "investor"):
                then, now = getattr(hist[-2], kind), getattr(hist[-1], kind)
                if then is not None and now is not None and band_of(then) != band_of(now):
                    moves.append((symbol, kind, band_of(then), band_of(now)))
    published = bus.after(head, 100)
    assert (first.band_changes, again.band_changes) == (0, 0)
    assert new_day.band_changes == len(published) == len(moves) > 0
    assert {
        (e.symbol, e.data["kind"], e.data["previous"]["band"], e.data["current"]["band"])
        for e in published
    } == set(moves)
    assert {e.type for e in published} == {"grade_change"}


def test_leaderboard_filters_sorts_and_pages(ctx: Context) -> None:
    with pytest.raises(DataUnavailable):
        leaderboard(ctx)
    _seed(ctx)
    run_grades(ctx)
    full = leaderboard(ctx, LeaderboardQuery(limit=100))
    values = [e.trader for e in full.items]
    assert values == sorted(values, reverse=True)
    assert full.total == len(full.items) >= 10

    seen, cursor = [], None
    while True:
        page = leaderboard(ctx, LeaderboardQuery(limit=3, cursor=cursor))
        seen += [e.symbol for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [e.symbol for e in full.items]

    defi = leaderboard(ctx, LeaderboardQuery(sector="defi", sort="investor", order="asc"))
    assert defi.items
    assert {e.sector for e in defi.items} == {"DeFi"}
    inv = [e.investor for e in defi.items]
    assert inv == sorted(inv)

    band = leaderboard(ctx, LeaderboardQuery(band="strong_sell"))
    assert all(e.trader_band == "strong_sell" for e in band.items)
    assert band.total < full.total

    past = leaderboard(ctx, LeaderboardQuery(day=date(2022, 6, 1)))
    assert past.day == date(2022, 6, 1)
    first = date(1970, 1, 1) + np.timedelta64(DAY0 + 59, "D")  # 60 bars before the first grade
    newest = date(1970, 1, 1) + np.timedelta64(DAY0 + N_DAYS - 1, "D")
    with pytest.raises(DataUnavailable, match=f"graded days run from {first} to {newest}"):
        leaderboard(ctx, LeaderboardQuery(day=date(2030, 1, 1)))
    with pytest.raises(ValidationFailed):
        leaderboard(ctx, LeaderboardQuery(band="moon"))
    with pytest.raises(ValidationFailed):
        leaderboard(ctx, LeaderboardQuery(cursor=full.next_cursor or "bm90LWEtY3Vyc29y"))
