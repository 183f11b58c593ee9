"""Alert rules: the kinds, their parameters and validation, and the public schema ladder.

Every rule reduces to "metric of token ⋄ threshold" (see `evaluate.py`):

    price_cross          price above/below `level`
    pct_change           % change over `window` (1h, 24h, 7d) ≥ +x (up), ≤ −x (down) or |·| ≥ x
    grade_cross          Trader/Investor Grade above/below `threshold` (0–100)
    grade_move           the grade moves by ≥ `points` from where it stood when last (re)armed
    signal_flip          the signal flips (to bullish, to bearish, or any change)
    level_break          the price breaks the key resistance (up) or support (down)
    probability_cross    P(reach `target` within `horizon_days`) above/below `threshold`

Crossing rules fire once per crossing and re-arm when the condition resets.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FutureDatetime,
    ValidationInfo,
    field_validator,
    model_validator,
)

RuleKind = Literal[
    "price_cross",
    "pct_change",
    "grade_cross",
    "grade_move",
    "signal_flip",
    "level_break",
    "probability_cross",
]
KINDS: tuple[RuleKind, ...] = (
    "price_cross",
    "pct_change",
    "grade_cross",
    "grade_move",
    "signal_flip",
    "level_break",
    "probability_cross",
)
Direction = Literal["above", "below", "either"]
Window = Literal["1h", "24h", "7d"]
GradeName = Literal["trader", "investor"]
SignalTarget = Literal["bullish", "bearish", "any"]
MAX_PRICE = 1e12
MAX_CHANNELS = 5
# an expiry in the past would store a rule that can never fire
FutureAware = Annotated[AwareDatetime, FutureDatetime]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Model):
    """A daily window (owner's local time) during which deliveries wait; may span midnight."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self


_REQUIRED: dict[str, tuple[str, ...]] = {
    "price_cross": ("direction", "level"),
    "pct_change": ("direction", "window", "threshold"),
    "grade_cross": ("direction", "grade", "threshold"),
    "grade_move": ("grade", "points"),
    "signal_flip": ("signal",),
    "level_break": ("direction",),
    "probability_cross": ("direction", "target", "horizon_days", "threshold"),
}
_KIND_FIELDS = tuple(dict.fromkeys(name for names in _REQUIRED.values() for name in names))
_THRESHOLD_RANGE: dict[str, tuple[float, float, str]] = {
    "pct_change": (0.01, 1000.0, "a % change between 0.01 and 1000"),
    "grade_cross": (0.0, 100.0, "a grade between 0 and 100"),
    "probability_cross": (0.0, 1.0, "a probability between 0 and 1"),
}


class RuleSpec(_Model):
    """What a rule watches: the fields every kind needs, validated per kind."""

    # defaults are validated too: a field the kind needs but the caller left out is an error
    model_config = ConfigDict(validate_default=True)

    symbol: str = Field(min_length=1, max_length=32, examples=["BTC"])
    kind: RuleKind
    direction: Direction | None = Field(default=None, description="above / below / either")
    level: float | None = Field(default=None, gt=0, le=MAX_PRICE, description="price level")
    window: Window | None = None
    threshold: float | None = Field(
        default=None, description="% change, grade (0-100) or probability (0-1) by kind"
    )
    grade: GradeName | None = None
    points: float | None = Field(default=None, gt=0, le=100)
    signal: SignalTarget | None = None
    target: float | None = Field(default=None, gt=0, le=MAX_PRICE, description="price target")
    horizon_days: int | None = Field(default=None, ge=1, le=365)

    @field_validator(*_KIND_FIELDS)
    @classmethod
    def _fits_kind(cls, value: object, info: ValidationInfo) -> object:
        # per field (after `kind`), so an error names the field: `body.threshold`, not `body`
        kind = info.data.get("kind")
        if kind is not None:  # else `kind` itself is invalid and says so
            _check_field(kind, str(info.field_name), value)
        return value


def _check_field(kind: str, name: str, value: object) -> None:
    needed = name in _REQUIRED[kind]
    if needed and value is None:
        raise ValueError(f"a {kind} rule needs {name}")
    if value is not None and not needed:
        raise ValueError(f"a {kind} rule does not take {name}")
    if name == "direction" and value == "either" and kind != "pct_change":
        raise ValueError("direction 'either' is only for pct_change rules")
    if name == "threshold" and kind in _THRESHOLD_RANGE and isinstance(value, float):
        lo, hi, what = _THRESHOLD_RANGE[kind]
        if not lo <= value <= hi:
            raise ValueError(f"threshold must be {what}")


def check_zone(value: str) -> str:
    """An IANA time zone name, or ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


class RuleOptions(_Model):
    """How a rule delivers: channels, cooldown, expiry, quiet hours in the owner's zone."""

    channels: list[str] = Field(min_length=1, max_length=MAX_CHANNELS)
    cooldown_seconds: int = Field(default=3600, ge=0, le=30 * 86_400)
    expires_at: FutureAware | None = Field(default=None, description="in the future")
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Paris"])
    quiet_hours: QuietHours | None = None
    note: str | None = Field(default=None, max_length=200)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


class AlertRuleCreate(RuleSpec, RuleOptions):
    """Body of `POST /v1/alerts`."""


class AlertRuleUpdate(_Model):
    """Body of `PATCH /v1/alerts/{id}`: delivery options and the active flag."""

    channels: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CHANNELS)
    cooldown_seconds: int | None = Field(default=None, ge=0, le=30 * 86_400)
    expires_at: FutureAware | None = Field(default=None, description="in the future")
    timezone: str | None = None
    quiet_hours: QuietHours | None = None
    active: bool | None = None
    note: str | None = Field(default=None, max_length=200)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class ChannelPublic(_Model):
    """A channel as shown back: kind and a redacted URL (tokens and passwords hidden)."""

    kind: str
    redacted: str


class AlertRulePublic(_Model):
    """A stored rule as the API shows it; channel URLs are never echoed in full."""

    id: int
    symbol: str
    kind: RuleKind
    spec: dict[str, object]
    channels: list[ChannelPublic]
    cooldown_seconds: int
    expires_at: AwareDatetime | None
    timezone: str
    quiet_hours: QuietHours | None
    active: bool
    armed: bool
    note: str | None
    created_at: AwareDatetime
    last_fired_at: AwareDatetime | None
    warnings: list[str] = Field(
        default_factory=list,
        description="Why the rule may not fire soon (e.g. the token has no current prices), "
        "as of this answer",
    )


class AlertRulesPage(_Model):
    """The caller's rules, newest first."""

    items: list[AlertRulePublic]
    total: int
    limit: int = Field(description="The per-key rule limit")


class DeliveryPublic(_Model):
    """One (event, channel) delivery: attempts, status and the last error."""

    event_id: int
    channel: ChannelPublic
    status: Literal["pending", "sending", "sent", "dead"]
    attempts: int
    idempotency_key: str
    last_error: str | None
    last_status: int | None
    next_attempt_at: AwareDatetime | None
    sent_at: AwareDatetime | None


class AlertEventPublic(_Model):
    """One firing of a rule with what it saw and where it went."""

    id: int
    rule_id: int
    fired_at: AwareDatetime
    title: str
    body: str
    deliveries: list[DeliveryPublic]


class AlertLog(_Model):
    """A rule's recent events, newest first."""

    rule_id: int
    events: list[AlertEventPublic]


class TestResult(_Model):
    """The outcome of `POST /v1/alerts/{id}/test` per channel."""

    __test__ = False  # not a pytest test class

    channel: ChannelPublic
    ok: bool
    status: int | None = None
    error: str | None = None


def in_quiet_hours(quiet: QuietHours | None, zone: str, at: datetime) -> bool:
    """Whether UTC instant `at` falls inside the daily quiet window in time zone `zone`."""
    if quiet is None:
        return False
    local = at.astimezone(ZoneInfo(zone)).time()
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def quiet_until(quiet: QuietHours | None, zone: str, at: datetime) -> datetime:
    """When delivery may start: `at`, or the end of the quiet window `at` falls in (UTC)."""
    if quiet is None or not in_quiet_hours(quiet, zone, at):
        return at
    local = at.astimezone(ZoneInfo(zone))
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end = end + timedelta(days=1)
    return end.astimezone(at.tzinfo)
