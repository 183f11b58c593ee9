"""Numbers on the dashboard: one significant-digit rule for prices, machine numbers for form
inputs, and changes that round to zero shown as neither up nor down."""

from __future__ import annotations

import pytest

from coinlens.analytics.grades import band_of
from coinlens.web.templating import fmt_grade, fmt_message, fmt_pct, input_number, price_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (112_345.678, "112,346"),  # integer digits are never rounded away
        (4_145.15, "4,145.1"),
        (560.6, "560.6"),  # was "560.600"
        (30.01, "30.01"),  # was "30.010"
        (118.7, "118.7"),  # was "118.700"
        (2.84681, "2.8468"),
        (0.364, "0.364"),
        (0.0012345, "0.0012345"),
        (1.658e-5, "0.0₄1658"),  # long runs of zeros as a subscript count
        (9.999996, "10"),  # rounded before the digits are counted
        (0.99999999, "1"),
        (-3.5, "-3.5"),
        (0.0, "0"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_price_text_has_one_significant_digit_rule(value: float | None, text: str) -> None:
    assert price_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.658e-5, "0.00001658"),
        (6054.609602599356, "6054.61"),
        (1e-9, "0.000000001"),
        (1234567.89, "1234570"),
        (4000.0, "4000"),
    ],
)
def test_input_number_is_a_plain_decimal_of_six_significant_digits(value: float, text: str) -> None:
    written = input_number(value)

    assert written == text
    assert float(written) == pytest.approx(value, rel=5e-6)


def test_input_number_of_an_unknown_value_is_empty() -> None:
    assert input_number(None) == ""


@pytest.mark.parametrize("value", [-0.00001, 0.0, 0.00049])
def test_a_change_that_rounds_to_zero_is_neutral(value: float) -> None:
    assert str(fmt_pct(value, 1)) == '<span class="flat">0.0%</span>'


def test_changes_keep_their_sign_and_colour() -> None:
    assert str(fmt_pct(-0.035, 1)) == '<span class="down">−3.5%</span>'
    assert str(fmt_pct(0.035, 1)) == '<span class="up">+3.5%</span>'


# the bands on a shown grade: 0–20, 21–40, 41–60, 61–80, 81–100 (analytics.grades.BANDS)
_SHOWN_BAND = ((20, "strong_sell"), (40, "sell"), (60, "neutral"), (80, "buy"), (100, "strong_buy"))


@pytest.mark.parametrize("grade", [20.5, 40.5, 60.5, 80.5, 20.49, 60.51, 2.5, 99.5, 0.0, 100.0])
def test_a_shown_grade_lies_in_the_band_it_is_coloured_with(grade: float) -> None:
    """num(0) rounded 60.5 half to even: "60" shown as a buy, which the bands call a hold."""
    shown = int(fmt_grade(grade))
    assert next(name for top, name in _SHOWN_BAND if shown <= top) == band_of(grade)


def test_an_unknown_grade_is_a_dash() -> None:
    assert fmt_grade(None) == "—"


def test_a_message_shows_its_code_spans_as_code_and_escapes_the_rest() -> None:
    shown = fmt_message(
        "`by` must be between 2025-10-01 and 2026-10-01 <script>; run `coinlens load`"
    )

    assert str(shown) == (
        "<code>by</code> must be between 2025-10-01 and 2026-10-01 &lt;script&gt;; run "
        "<code>coinlens load</code>"
    )
    assert str(fmt_message("a lone ` stays")) == "a lone ` stays"
