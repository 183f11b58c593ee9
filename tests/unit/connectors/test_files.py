"""OHLCV file reader: every real layout, every rejection reason with its exact file line."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from coinlens.connectors.files import Hints, ParsedFile, parse_file
from coinlens.connectors.layouts import LAYOUTS, market_for, split_pair, token_of
from coinlens.domain.errors import NotFound, ValidationFailed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "import"
VENUE = Hints(exchange="binance", instrument="spot")
HEADER = "symbol,open_time,open,high,low,close,volume"
DAY = 86_400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
BTC_PERP_FIRST = (1_704_844_800, 30628280360.85305, 7_930_762)


def _write(tmp_path: Path, body: str, name: str = "sample_1d.csv") -> Path:
    path = tmp_path / name
    path.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
    return path


def _canonical(tmp_path: Path, *rows: str, name: str = "sample_1d.csv") -> ParsedFile:
    return parse_file(_write(tmp_path, "\n".join([HEADER, *rows]), name), VENUE)


def _reasons(parsed: ParsedFile) -> dict[int | None, str]:
    return {r.line: r.reason for r in parsed.rejected}


def _times(parsed: ParsedFile) -> list[int]:
    return [row["open_time"] for batch in parsed.batches for row in batch.rows]


# --- real layouts ------------------------------------------------------------------------------


def test_yanniedog_daily_infers_market_and_timeframe_from_the_name() -> None:
    parsed = parse_file(FIXTURES / "yanniedog" / "BTCUSDT_1d.csv")

    assert (parsed.layout, parsed.timeframe, parsed.rows_total) == ("yanniedog", "1d", 30)
    assert parsed.rejected == ()
    assert parsed.gaps == ()
    (batch,) = parsed.batches
    assert batch.market.market_key == "binance:spot:BTCUSDT"
    assert (batch.market.token, batch.market.quote) == ("BTC", "USDT")
    assert batch.rows[0] == {
        "open_time": 1_502_928_000,  # 2017-08-17, naive dates are UTC per the source
        "open": 4261.48,
        "high": 4485.39,
        "low": 4200.74,
        "close": 4285.08,
        "volume": 795.150377,
        "quote_volume": None,
        "trades": None,
    }


def test_yanniedog_hourly_gzip() -> None:
    parsed = parse_file(FIXTURES / "yanniedog" / "SOLUSDT_1h.csv.gz")

    assert (parsed.timeframe, parsed.rows_good, parsed.rejected) == ("1h", 24, ())
    times = _times(parsed)
    assert times[0] == 1_597_125_600  # 2020-08-11 06:00:00 UTC
    assert all(b - a == 3_600 for a, b in itertools.pairwise(times))


def test_marketlab_iso_z() -> None:
    parsed = parse_file(FIXTURES / "marketlab" / "ETH_USDT-1d.csv")

    assert (parsed.layout, parsed.timeframe, parsed.rows_good) == ("marketlab", "1d", 25)
    assert parsed.batches[0].market.market_key == "binance:spot:ETHUSDT"
    assert _times(parsed)[0] == 1_727_740_800  # 2024-10-01T00:00:00Z


def test_gravestone_multi_symbol_perp_with_multiplier() -> None:
    parsed = parse_file(FIXTURES / "gravestone" / "binance_usdm_perp_1d.csv")

    assert (parsed.layout, parsed.rows_total, parsed.rows_good) == ("gravestone", 30, 30)
    markets = {b.market.market_key: b.market for b in parsed.batches}
    assert set(markets) == {
        "binance:perp:1000PEPEUSDT",
        "binance:perp:1INCHUSDT",
        "binance:perp:BTCUSDT",
    }
    pepe = markets["binance:perp:1000PEPEUSDT"]
    assert (pepe.token, pepe.contract_multiplier) == ("PEPE", 1000.0)
    inch = markets["binance:perp:1INCHUSDT"]
    assert (inch.token, inch.contract_multiplier) == ("1INCH", 1.0)  # a name, not a multiplier
    btc = next(b for b in parsed.batches if b.market.pair == "BTCUSDT")
    assert btc.rows[0]["open_time"] == BTC_PERP_FIRST[0]
    assert (btc.rows[0]["quote_volume"], btc.rows[0]["trades"]) == BTC_PERP_FIRST[1:]


def test_coinbase_multi_symbol_usd() -> None:
    parsed = parse_file(FIXTURES / "coinbase" / "coinbase_top200_daily_sample.csv")

    assert (parsed.layout, parsed.timeframe, parsed.rows_good) == ("coinbase", "1d", 20)
    assert [b.market.market_key for b in parsed.batches] == [
        "coinbase:spot:BTC-USD",  # Coinbase spells its products BASE-QUOTE
        "coinbase:spot:ETH-USD",
    ]
    assert all(len(b.rows) == 10 for b in parsed.batches)


def test_cryptodatadownload_reversed_mixed_units_and_conflicting_duplicates() -> None:
    parsed = parse_file(FIXTURES / "cryptodatadownload" / "Binance_BTCUSDT_1h.csv")

    assert (parsed.layout, parsed.timeframe, parsed.rows_total) == ("cryptodatadownload", "1h", 21)
    # lines 7–16 are five hours recorded twice (ms + rounded seconds copy): all rejected
    assert [r.line for r in parsed.rejected] == list(range(7, 17))
    assert parsed.rejected[0].reason == (
        "conflicting duplicate: open time 2020-11-20T07:00:00Z also on line 8 with different values"
    )
    times = _times(parsed)
    assert times == sorted(times)
    assert len(times) == 11
    rows = parsed.batches[0].rows
    assert rows[0]["open_time"] == 1_502_942_400
    assert rows[0]["trades"] is None
    assert rows[-1]["trades"] == 63_573
    assert rows[-1]["quote_volume"] == 62643788.4821817
    assert len(parsed.gaps) == 1
    assert parsed.gaps[0].first_missing == 1_502_960_400 + 3_600


def test_parquet_numbers_rows_as_if_csv(tmp_path: Path) -> None:
    table = pacsv.read_csv(FIXTURES / "yanniedog" / "BTCUSDT_1d.csv")
    path = tmp_path / "BTCUSDT_1d.parquet"
    pq.write_table(table, path)

    parsed = parse_file(path)

    assert parsed.rows_good == 30
    assert (
        parsed.batches[0].rows
        == parse_file(FIXTURES / "yanniedog" / "BTCUSDT_1d.csv").batches[0].rows
    )


def test_parquet_typed_timestamps_keep_their_zone(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDT_1d.parquet"
    stamps = pa.array([T0 * 1_000_000, (T0 + DAY) * 1_000_000], pa.timestamp("us", tz="UTC"))
    naive = pa.array([T0 * 1_000_000, (T0 + DAY) * 1_000_000], pa.timestamp("us"))
    cols = {f: [2.0, 2.0] for f in ("open", "high", "low", "close", "volume")}
    pq.write_table(pa.table({"open_time": stamps, **cols}), path)
    pq.write_table(pa.table({"open_time": naive, **cols}), tmp_path / "SOLUSDT_1d.parquet")

    aware = parse_file(path, VENUE)
    ambiguous = parse_file(tmp_path / "SOLUSDT_1d.parquet", VENUE)

    assert _times(aware) == [T0, T0 + DAY]
    assert [r.line for r in ambiguous.rejected] == [2, 3]
    assert "ambiguous timestamp" in ambiguous.rejected[0].reason


# --- canonical layout and inference ----------------------------------------------------------


def test_canonical_accepts_offsets_and_epoch_seconds_and_ms(tmp_path: Path) -> None:
    parsed = _canonical(
        tmp_path,
        "BTCUSDT,2024-01-01T02:00:00+02:00,1,2,1,2,5",  # = 00:00 UTC
        f"BTCUSDT,{T0 + DAY},1,2,1,2,5",
        f"BTCUSDT,{(T0 + 2 * DAY) * 1000},1,2,1,2,5",
        "BTCUSDT,2024-01-04T00:00:00Z,1,2,1,2,5",
    )

    assert parsed.rejected == ()
    assert _times(parsed) == [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]


def test_canonical_without_symbol_column_uses_the_file_name(tmp_path: Path) -> None:
    body = "open_time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,1,2,5"

    gz = tmp_path / "ETHUSDT_1d.csv.gz"
    gz.write_bytes(gzip.compress(body.encode()))
    separated = _write(tmp_path, body, "MATIC_USDT-1h.csv")

    from_gz = parse_file(gz, VENUE)
    renamed = parse_file(separated, Hints(exchange="binance", instrument="spot", timeframe="1d"))

    assert (from_gz.batches[0].market.market_key, from_gz.timeframe) == (
        "binance:spot:ETHUSDT",
        "1d",
    )
    market = renamed.batches[0].market
    assert (market.pair, market.token, renamed.timeframe) == ("MATICUSDT", "POL", "1d")


def test_missing_symbol_timeframe_or_venue_asks_for_the_option(tmp_path: Path) -> None:
    body = "open_time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,1,2,5"
    no_name = _write(tmp_path, body, "export.csv")

    with pytest.raises(ValidationFailed, match="--timeframe"):
        parse_file(no_name, VENUE)
    with pytest.raises(ValidationFailed, match="--symbol"):
        parse_file(no_name, Hints(exchange="binance", instrument="spot", timeframe="1d"))
    with pytest.raises(ValidationFailed, match="--exchange and --instrument"):
        parse_file(no_name, Hints(timeframe="1d", symbol="BTCUSDT"))
    with_quote = parse_file(no_name, Hints("BTC", "kraken", "spot", "EUR", "1d"))
    assert with_quote.batches[0].market.market_key == "kraken:spot:BTCEUR"


def test_unknown_layout_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="unknown column layout"):
        parse_file(_write(tmp_path, "a,b,c\n1,2,3"))
    with pytest.raises(NotFound):
        parse_file(tmp_path / "nope.csv")


def test_symbol_option_filters_a_multi_symbol_file() -> None:
    parsed = parse_file(FIXTURES / "gravestone" / "binance_usdm_perp_1d.csv", Hints(symbol="PEPE"))

    assert [b.market.pair for b in parsed.batches] == ["1000PEPEUSDT"]
    assert (parsed.rows_good, parsed.skipped, parsed.rejected) == (10, 20, ())
    assert any("skipped" in w for w in parsed.warnings)


@pytest.mark.parametrize(
    ("symbol", "quote", "expected"),
    [
        ("BTCUSDT", None, ("BTC", "USDT")),
        ("BTC/USD", None, ("BTC", "USD")),
        ("ETH-USDC", None, ("ETH", "USDC")),
        ("BTC", "usdt", ("BTC", "USDT")),
        ("BTC", None, None),
        ("BTC/USDT:USDT", None, ("BTC", "USDT")),  # ccxt's perpetual, as freqtrade exports it
        ("1000PEPE/USDT:USDT", None, ("1000PEPE", "USDT")),
        ("BTC USDT", None, None),  # not a token 'BTC '
        ("BTC USDT", "USDT", None),
        ("BTC-PERP", None, None),  # a perpetual marker is not a quote currency
        ("BTC-PERP", "usd", ("BTC", "USD")),
        ("BTCUSD_PERP", None, ("BTC", "USD")),  # Binance COIN-M
        ("BTC-USDT-SWAP", None, ("BTC", "USDT")),  # OKX
        ("ETH-PERPETUAL", "USD", ("ETH", "USD")),  # Deribit
    ],
)
def test_split_pair(symbol: str, quote: str | None, expected: tuple[str, str] | None) -> None:
    assert split_pair(symbol, quote) == expected


@pytest.mark.parametrize(
    ("symbol", "hints", "expected"),
    [
        ("BTC-PERP", Hints(exchange="ftx"), "cannot tell the quote currency of perpetual"),
        ("BTC-PERP", Hints(exchange="ftx", quote="USD"), "ftx:perp:BTCUSD"),
        ("BTCUSD_PERP", Hints(exchange="binance"), "binance:perp:BTCUSD"),
        ("BTC-USDT-SWAP", Hints(exchange="okx", instrument="perp"), "okx:perp:BTCUSDT"),
        ("BTC-USDT-SWAP", Hints(exchange="okx", instrument="spot"), "names a perpetual, but"),
        ("BTCUSDT", Hints(exchange="binance", instrument="spot"), "binance:spot:BTCUSDT"),
    ],
)
def test_a_perpetual_marker_makes_a_perp_market(symbol: str, hints: Hints, expected: str) -> None:
    canonical = next(layout for layout in LAYOUTS if layout.name == "canonical")
    got = market_for(symbol, canonical, hints)
    assert expected in (got if isinstance(got, str) else got.market_key)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("1000PEPE", ("PEPE", 1000.0)),
        ("1000000MOG", ("MOG", 1e6)),
        ("1MBABYDOGE", ("BABYDOGE", 1e6)),
        ("1INCH", ("1INCH", 1.0)),
        ("MATIC", ("POL", 1.0)),
        ("RNDR", ("RENDER", 1.0)),
        ("LUNA2", ("LUNA", 1.0)),
        ("RAYSOL", ("RAY", 1.0)),
    ],
)
def test_token_of(base: str, expected: tuple[str, float]) -> None:
    assert token_of(base) == expected


# --- every rejection reason, with its line ---------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("BTCUSDT,yesterday,1,2,1,2,5", "unparseable timestamp 'yesterday'"),
        ("BTCUSDT,2024-01-02 00:00:00,1,2,1,2,5", "ambiguous timestamp '2024-01-02 00:00:00'"),
        ("BTCUSDT,86400,1,2,1,2,5", "out of range 2009..2100"),
        ("BTCUSDT,2024-01-02T05:00:00Z,1,2,1,2,5", "not on the 1d grid"),
        ("BTCUSDT,2024-01-02T00:00:00+02:00,1,2,1,2,5", "open time 2024-01-01T22:00:00Z"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,1,2,1,5", "high (1) < low (2)"),
        ("BTCUSDT,2024-01-02T00:00:00Z,3,2,1,2,5", "open (3) outside [low, high] = [1, 2]"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,2,1,0.5,5", "close (0.5) outside [low, high]"),
        ("BTCUSDT,2024-01-02T00:00:00Z,0,2,1,2,5", "non-positive open (0)"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,2,-1,1,5", "non-positive low (-1)"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,2,1,2,-5", "negative volume (-5)"),
        ("BTCUSDT,2024-01-02T00:00:00Z,NaN,2,1,2,5", "open is NaN or infinite (NaN)"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,inf,1,2,5", "high is NaN or infinite (inf)"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,2,1,2,lots", "volume is not a number: 'lots'"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,2,1,,5", "close is missing"),
        ("BTCUSDT,2024-01-02T00:00:00Z,1,2,1,2", "expected 7 fields, found 6"),
        ("BTC,2024-01-02T00:00:00Z,1,2,1,2,5", "cannot tell base and quote of symbol 'BTC'"),
    ],
)
def test_each_rejection_reason_names_its_line(tmp_path: Path, row: str, reason: str) -> None:
    good = "BTCUSDT,2024-01-01T00:00:00Z,1,2,1,2,5"
    after = "BTCUSDT,2024-01-03T00:00:00Z,1,2,1,2,5"

    parsed = _canonical(tmp_path, good, row, after)

    assert len(parsed.rejected) == 1
    rejected = parsed.rejected[0]
    assert rejected.line == 3
    assert reason in rejected.reason
    assert rejected.raw.startswith("BTC")
    assert _times(parsed) == [T0, T0 + 2 * DAY]  # the good rows land
    assert parsed.rows_total == parsed.rows_good + len(parsed.rejected)  # nothing dropped


def test_optional_fields_are_validated_too(tmp_path: Path) -> None:
    body = "\n".join(
        [
            HEADER + ",quote_volume,trades",
            "ETHUSDT,2024-01-01T00:00:00Z,1,2,1,2,5,10,",
            "ETHUSDT,2024-01-02T00:00:00Z,1,2,1,2,5,-1,3",
            "ETHUSDT,2024-01-03T00:00:00Z,1,2,1,2,5,nan,3",
            "ETHUSDT,2024-01-04T00:00:00Z,1,2,1,2,5,10,2.5",
        ]
    )

    parsed = parse_file(_write(tmp_path, body), VENUE)

    assert _reasons(parsed) == {
        3: "negative quote_volume (-1)",
        4: "quote_volume is NaN or infinite (nan)",
        5: "trades is not a whole number (2.5)",
    }
    assert parsed.batches[0].rows[0]["trades"] is None


def test_several_reasons_on_one_row_are_all_given(tmp_path: Path) -> None:
    parsed = _canonical(tmp_path, "BTCUSDT,2024-01-01T00:00:00Z,0,1,2,1,-5")

    assert _reasons(parsed) == {
        2: "non-positive open (0); negative volume (-5); high (1) < low (2)"
    }


def test_identical_duplicates_merge_conflicting_ones_are_all_rejected(tmp_path: Path) -> None:
    parsed = _canonical(
        tmp_path,
        "BTCUSDT,2024-01-01T00:00:00Z,1,2,1,2,5",
        f"BTCUSDT,{T0},1,2,1,2,5",  # same candle, other spelling: identical
        "BTCUSDT,2024-01-02T00:00:00Z,1,2,1,2,5",
        "BTCUSDT,2024-01-02T00:00:00Z,1,2,1,2,6",
    )

    assert parsed.merged == 1
    conflict = "conflicting duplicate: open time 2024-01-02T00:00:00Z also on line {} with "
    conflict += "different values"
    assert _reasons(parsed) == {4: conflict.format(5), 5: conflict.format(4)}
    assert _times(parsed) == [T0]
    assert parsed.rows_total == parsed.rows_good + parsed.merged + len(parsed.rejected)


def test_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    parsed = _canonical(
        tmp_path,
        "BTCUSDT,2024-01-01T00:00:00Z,1,2,1,2,5",
        "BTCUSDT,2024-01-02T00:00:00Z,1,2,1,2,5",
        "BTCUSDT,2024-01-05T00:00:00Z,1,2,1,2,5",
    )

    assert parsed.rejected == ()
    (gap,) = parsed.gaps
    assert (gap.first_missing, gap.last_missing, gap.missing) == (T0 + 2 * DAY, T0 + 3 * DAY, 2)
    assert _times(parsed) == [T0, T0 + DAY, T0 + 4 * DAY]


def test_hourly_spacing_and_timeframe_warning(tmp_path: Path) -> None:
    parsed = _canonical(
        tmp_path,
        "BTCUSDT,2024-01-01T00:00:00Z,1,2,1,2,5",
        "BTCUSDT,2024-01-01T00:30:00Z,1,2,1,2,5",
        "BTCUSDT,2024-01-01T01:15:00Z,1,2,1,2,5",
        name="BTCUSDT_1h.csv",
    )

    assert _reasons(parsed) == {
        3: "open time 2024-01-01T00:30:00Z is not on the 1h grid (candles open at the hour)",
        4: "open time 2024-01-01T01:15:00Z is not on the 1h grid (candles open at the hour)",
    }
    assert any("off the 1h grid" in w for w in parsed.warnings)


def test_blank_lines_are_skipped_but_line_numbers_stay_true(tmp_path: Path) -> None:
    body = f"{HEADER}\n\nBTCUSDT,2024-01-01T00:00:00Z,1,2,1,2,5\n\nBTCUSDT,bad,1,2,1,2,5\n"

    parsed = parse_file(_write(tmp_path, body), VENUE)

    assert list(_reasons(parsed)) == [5]
    assert parsed.rows_total == 2


def test_spreadsheet_exports_with_bom_semicolons_or_tabs_are_read(tmp_path: Path) -> None:
    rows = [HEADER, "BTCUSDT,2024-01-01T00:00:00Z,1,2,0.5,1.5,10", "BTCUSDT,bad,1,2,1,2,5"]
    for sep, name in ((";", "semi_1d.csv"), ("\t", "tabs_1d.csv")):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(r.replace(",", sep) for r in rows).encode())

        parsed = parse_file(path, VENUE)

        assert (parsed.layout, _times(parsed), list(_reasons(parsed))) == ("canonical", [T0], [3])
        assert parsed.rejected[0].raw == "BTCUSDT,bad,1,2,1,2,5"


def test_a_decimal_comma_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "excel_1d.csv"
    path.write_text(f"{HEADER.replace(',', ';')}\nBTCUSDT;{T0};1;2;0,5;1,5;10\n", encoding="utf-8")

    parsed = parse_file(path, VENUE)

    hint = "a comma: write decimals with '.' and no thousands separators"
    assert _reasons(parsed) == {
        2: f"low is not a number: '0,5' ({hint}); close is not a number: '1,5' ({hint})"
    }


# --- open times in the future and venue names ---------------------------------------------------


def test_an_open_time_after_now_plus_one_timeframe_is_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "\n".join(
            [
                HEADER,
                "BTCUSDT,2024-01-01T00:00:00Z,10,13,9,12,100",
                "BTCUSDT,2024-01-02T00:00:00Z,10,13,9,12,100",  # the candle open at `now`
                "BTCUSDT,2024-01-03T00:00:00Z,10,13,9,12,100",  # now + 1d: still allowed
                "BTCUSDT,2024-01-04T00:00:00Z,10,13,9,12,100",
                "BTCUSDT,2099-01-01T00:00:00Z,10,13,9,12,100",
            ]
        ),
    )

    parsed = parse_file(path, VENUE, now=T0 + DAY + 3_600)

    assert _times(parsed) == [T0, T0 + DAY, T0 + 2 * DAY]
    assert _reasons(parsed) == {
        5: "open time 2024-01-04T00:00:00Z is in the future (after now + 1d)",
        6: "open time 2099-01-01T00:00:00Z is in the future (after now + 1d)",
    }
    assert parsed.gaps == ()


def test_the_clock_is_the_default_now(tmp_path: Path) -> None:
    parsed = _canonical(tmp_path, "BTCUSDT,2099-01-01T00:00:00Z,10,13,9,12,100")

    assert "in the future" in _reasons(parsed)[2]


@pytest.mark.parametrize("exchange", ["Bad Exchange!", "bin/ance", "-x", "", "a" * 33])
def test_an_exchange_name_that_cannot_be_a_market_key_fails_the_file(
    tmp_path: Path, exchange: str
) -> None:
    path = _write(tmp_path, f"{HEADER}\nBTCUSDT,2024-01-01T00:00:00Z,10,13,9,12,100")

    with pytest.raises(ValidationFailed, match="--exchange"):
        parse_file(path, Hints(exchange=exchange, instrument="spot"))


@pytest.mark.parametrize("exchange", ["binance", "Binance", "gate.io", "okx_v5", "crypto-com"])
def test_exchange_names_of_letters_digits_and_separators_are_accepted(
    tmp_path: Path, exchange: str
) -> None:
    path = _write(tmp_path, f"{HEADER}\nBTCUSDT,2024-01-01T00:00:00Z,10,13,9,12,100")

    parsed = parse_file(path, Hints(exchange=exchange, instrument="spot"))

    assert parsed.batches[0].market.market_key == f"{exchange.lower()}:spot:BTCUSDT"
