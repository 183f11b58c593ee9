"""What the overview and ecosystem pages compute from service data, without a database."""

from __future__ import annotations

from datetime import date

import numpy as np

from coinlens.services.ecosystem import Point, Series
from coinlens.storage.panel import Panel
from coinlens.web import overview_data as data
from coinlens.web.ecosystem_page import ACTIVITY_LABELS, _chart

DAY0 = 20_000  # epoch day 2024-10-04


def _panel(closes: dict[str, list[float]]) -> Panel:
    close = np.array(list(closes.values()), dtype=np.float64)
    n = len(closes)
    return Panel(
        token_ids=np.arange(n, dtype=np.int64),
        symbols=list(closes),
        days=np.arange(DAY0, DAY0 + close.shape[1], dtype=np.int64),
        open=close,
        high=close,
        low=close,
        close=close,
        volume=np.ones_like(close),
        quote_volume=np.full_like(close, np.nan),
        version=1,
    )


def _overview(closes: dict[str, list[float]]) -> data.Overview:
    rows = {s: data.Row(symbol=s, name=s, sector=None, synthetic=False) for s in closes}
    as_of = data._panel_fields(rows, _panel(closes))
    return data.Overview(list(rows.values()), as_of, None, None, False, [], [])


def test_a_token_without_a_close_on_the_as_of_day_is_stale_not_a_mover() -> None:
    nan = float("nan")
    ov = _overview({"NOW": [1, 1, 1, 1, 1, 1, 1, 1.01], "OLD": [1, 1, 1, 1, 1, 1, 2, nan]})

    gainers, losers = data.movers(ov)

    old = next(r for r in ov.rows if r.symbol == "OLD")
    assert ov.as_of == date(2024, 10, 11)
    assert old.stale
    assert old.last_close == date(2024, 10, 10)
    assert old.price == 2.0
    assert (old.ch24, old.ch7, old.volume) == (None, None, None)  # +100 % was not today's move
    assert [r.symbol for r in gainers] == ["NOW"]
    assert [r.symbol for r in losers] == ["NOW"]


def test_a_current_token_keeps_its_changes() -> None:
    ov = _overview({"NOW": [1, 1, 1, 1, 1, 1, 1, 1.1]})

    row = ov.rows[0]
    assert not row.stale
    assert row.last_close == ov.as_of
    assert row.ch24 is not None
    assert abs(row.ch24 - 0.1) < 1e-12


def _series(metric: str) -> Series:
    points = [Point(date=date(2024, 1, d), value=float(d)) for d in (1, 2)]
    return Series(entity="ethereum", metric=metric, source="test", points=points)


def test_one_entitys_metrics_are_titled_by_metric() -> None:
    activity = [_series("tx_count"), _series("active_addresses")]

    titled = _chart(activity, labels=ACTIVITY_LABELS)
    plain = _chart(activity)

    assert [s["title"] for s in titled] == ["transactions", "active addresses"]
    assert [s["title"] for s in plain] == ["ethereum", "ethereum"]
