"""The ecosystem read side on a real database: what a reader of /v1/ecosystem sees."""

from __future__ import annotations

from datetime import date

from coinlens.services.context import Context
from coinlens.services.ecosystem import stablecoin_supply
from coinlens.storage import repo


def _supply(entity: str, day: date, value: float) -> dict[str, object]:
    return {
        "entity": entity,
        "metric": "supply_usd",
        "date": day,
        "value": value,
        "unit": "USD",
        "source": "defillama",
    }


def test_a_discontinued_stablecoin_is_not_listed_among_the_current_largest(ctx: Context) -> None:
    with ctx.engine.begin() as db:
        repo.write_metrics(
            db,
            [
                _supply("USTC", date(2022, 5, 11), 11.78e9),  # its series ended with the collapse
                _supply("USDT", date(2025, 8, 3), 164.75e9),
                _supply("DAI", date(2025, 8, 3), 4.31e9),
                _supply("all_stablecoins", date(2025, 8, 3), 250e9),
            ],
        )

    latest = stablecoin_supply(ctx).latest

    assert [(i.entity, i.as_of) for i in latest] == [
        ("USDT", date(2025, 8, 3)),
        ("DAI", date(2025, 8, 3)),
        ("USTC", date(2022, 5, 11)),
    ]
