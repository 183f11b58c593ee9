"""API keys: create, list, rotate, revoke and verify; usage metering per key and day.

A key looks like `cl_live_<lookup:12><secret:32><check:6>`: the lookup id finds the row, the
check (CRC-32 in base62 over everything before it) rejects typos and forgeries before any
database access, and only an HMAC-SHA-256 of the whole key under the server secret is
stored. Plaintext exists once, in the answer to create/rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from coinlens.domain.errors import NotFound, UserInputError
from coinlens.services.context import Context
from coinlens.services.paging import decode_cursor, encode_cursor, invalid
from coinlens.storage import keys_repo

PREFIX = "cl_live_"
SCOPES = ("read", "alerts:write", "admin")
DEFAULT_SCOPES = SCOPES  # the first key of an account owns it
MAX_OVERLAP = timedelta(days=30)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_LOOKUP_LEN, _SECRET_LEN, _CHECK_LEN = 12, 32, 6
KEY_LENGTH = len(PREFIX) + _LOOKUP_LEN + _SECRET_LEN + _CHECK_LEN
_SHAPE = re.compile(rf"{PREFIX}[0-9a-z]{{{_LOOKUP_LEN}}}[0-9A-Za-z]{{{_SECRET_LEN + _CHECK_LEN}}}")
EPOCH = date(1970, 1, 1)


class KeyRejected(UserInputError):
    """The presented API key is not accepted; `reason` says why (HTTP 401)."""

    title = "Unauthorized"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ScopeMissing(UserInputError):
    """The key is valid but lacks the scope this operation needs (HTTP 403)."""

    title = "Forbidden"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key as its owner may see it (never the plaintext, never the hash)."""

    id: int
    lookup_id: str
    account: str
    name: str | None
    email: str | None
    scopes: tuple[str, ...]
    plan: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: int | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: its record and the plaintext, which is never available again."""

    key: ApiKey
    plaintext: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the verified key's identity, account, scopes and plan."""

    key_id: int
    lookup_id: str
    account: str
    scopes: frozenset[str]
    plan: str
    expires_at: datetime | None = None  # a key it creates ends no later


@dataclass(frozen=True, slots=True)
class KeysPage:
    """One page of an account's keys."""

    items: list[ApiKey]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class UsageDay:
    """Requests one key made on one UTC day."""

    day: date
    key_id: int
    lookup_id: str
    requests: int


@dataclass(frozen=True, slots=True)
class UsagePage:
    """One page of usage rows."""

    items: list[UsageDay]
    next_cursor: str | None


# --- format --------------------------------------------------------------------------------


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def _check(body: str) -> str:
    return _b62(zlib.crc32(body.encode()), _CHECK_LEN)


def new_plaintext() -> tuple[str, str]:
    """A fresh random key and its lookup id."""
    lookup = "".join(secrets.choice(_B36) for _ in range(_LOOKUP_LEN))
    secret = "".join(secrets.choice(_B62) for _ in range(_SECRET_LEN))
    body = PREFIX + lookup + secret
    return body + _check(body), lookup


def parse_key(raw: str) -> str:
    """The lookup id of a well-formed key; `KeyRejected("malformed")` otherwise (no I/O)."""
    if len(raw) != KEY_LENGTH or not _SHAPE.fullmatch(raw):
        raise KeyRejected("malformed", "the API key is malformed (expected cl_live_…)")
    body, check = raw[:-_CHECK_LEN], raw[-_CHECK_LEN:]
    if not hmac.compare_digest(_check(body), check):
        raise KeyRejected("malformed", "the API key fails its checksum")
    return raw[len(PREFIX) : len(PREFIX) + _LOOKUP_LEN]


def key_hash(secret: str, plaintext: str) -> str:
    """Hex HMAC-SHA-256 of `plaintext` under the server secret."""
    return hmac.new(secret.encode(), plaintext.encode(), hashlib.sha256).hexdigest()


# --- cursors -------------------------------------------------------------------------------


# --- use cases -----------------------------------------------------------------------------


def _to_key(row: Row[Any]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"],
        lookup_id=m["lookup_id"],
        account=m["account"],
        name=m["name"],
        email=m["email"],
        scopes=tuple(m["scopes"]),
        plan=m["plan"],
        created_at=m["created_at"],
        last_used_at=m["last_used_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        rotated_from=m["rotated_from"],
    )


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise invalid("scopes", f"choose from {', '.join(SCOPES)} (unknown: {unknown})")
    return tuple(s for s in SCOPES if s in scopes)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a new key should be: who it is for, what it may do, and on which plan."""

    name: str | None = None
    email: str | None = None
    scopes: Sequence[str] = DEFAULT_SCOPES
    plan: str = "free"
    expires_at: datetime | None = None
    account: str | None = None  # None: a new account (self-serve)


def create_key(ctx: Context, spec: KeySpec, *, now: datetime | None = None) -> CreatedKey:
    """Store a new key (hash only) and return it with its plaintext, shown this once."""
    if not (spec.name or spec.email):
        raise invalid("body", "give a name or an email")
    if spec.plan not in ctx.settings.plans or spec.plan == "anonymous":
        raise invalid("plan", f"unknown plan {spec.plan!r}")
    scopes = _check_scopes(spec.scopes)
    return _insert(ctx, spec, scopes, rotated_from=None, now=now or datetime.now(UTC))


def _insert(
    ctx: Context, spec: KeySpec, scopes: tuple[str, ...], *, rotated_from: int | None, now: datetime
) -> CreatedKey:
    with ctx.engine.begin() as conn:
        return _insert_in(conn, ctx, spec, scopes, rotated_from=rotated_from, now=now)


def _insert_in(
    conn: Connection,
    ctx: Context,
    spec: KeySpec,
    scopes: tuple[str, ...],
    *,
    rotated_from: int | None,
    now: datetime,
) -> CreatedKey:
    plaintext, lookup = new_plaintext()
    row = {
        "lookup_id": lookup,
        "key_hash": key_hash(ctx.settings.secret.get_secret_value(), plaintext),
        "account": spec.account or secrets.token_hex(16),
        "name": spec.name,
        "email": spec.email,
        "scopes": list(scopes),
        "plan": spec.plan,
        "created_at": now,
        "expires_at": spec.expires_at,
        "rotated_from": rotated_from,
    }
    key_id = keys_repo.insert_key(conn, row)
    stored = keys_repo.key_of_account(conn, str(row["account"]), key_id)
    assert stored is not None  # noqa: S101 - just inserted in the same transaction
    return CreatedKey(key=_to_key(stored), plaintext=plaintext)


def get_key(ctx: Context, account: str, key_id: int) -> ApiKey:
    """Key `key_id` of `account`; NotFound for any other account's key (no existence leak)."""
    with ctx.engine.connect() as conn:
        row = keys_repo.key_of_account(conn, account, key_id)
    if row is None:
        raise NotFound(f"no key {key_id}")
    return _to_key(row)


def require_key(ctx: Context, key_id: int) -> None:
    """NotFound unless API key `key_id` exists (e.g. before storing rules it will own)."""
    with ctx.engine.connect() as conn:
        if not keys_repo.key_exists(conn, key_id):
            raise NotFound(f"no API key with id {key_id}")


def list_keys(ctx: Context, account: str, *, cursor: str | None, limit: int) -> KeysPage:
    """The account's keys in creation order, `limit` at a time."""
    after = int(decode_cursor("keys", cursor).get("id", 0)) if cursor else 0
    with ctx.engine.connect() as conn:
        rows = keys_repo.keys_of_account(conn, account, after_id=after, limit=limit + 1)
    items = [_to_key(r) for r in rows[:limit]]
    more = len(rows) > limit
    return KeysPage(items, encode_cursor("keys", id=items[-1].id) if more and items else None)


def revoke_key(ctx: Context, account: str, key_id: int, *, now: datetime | None = None) -> ApiKey:
    """Revoke a key of `account` at once (idempotent)."""
    key = get_key(ctx, account, key_id)
    if key.revoked_at is None:
        with ctx.engine.begin() as conn:
            keys_repo.update_key(conn, key_id, revoked_at=now or datetime.now(UTC))
    return get_key(ctx, account, key_id)


def rotate_key(
    ctx: Context, account: str, key_id: int, *, overlap: timedelta, now: datetime | None = None
) -> CreatedKey:
    """A successor key with the same scopes and plan; the old one keeps working for `overlap`."""
    now = now or datetime.now(UTC)
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise invalid("overlap_seconds", f"between 0 and {int(MAX_OVERLAP.total_seconds())}")
    with ctx.engine.begin() as conn:
        keys_repo.lock_key(conn, key_id)  # two rotations of one key run one after the other
        row = keys_repo.key_of_account(conn, account, key_id)
        if row is None:
            raise NotFound(f"no key {key_id}")
        old = _to_key(row)
        if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
            raise UserInputError(f"key {key_id} is revoked or expired; create a new one instead")
        successor = keys_repo.live_successor(conn, key_id)
        if successor is not None:  # a second successor would be a live key nobody asked for
            raise UserInputError(
                f"key {key_id} was already rotated to key {successor.id}: use that key "
                f"(rotate it for another), or revoke it first to rotate {key_id} again"
            )
        spec = KeySpec(old.name, old.email, old.scopes, old.plan, old.expires_at, old.account)
        created = _insert_in(conn, ctx, spec, old.scopes, rotated_from=old.id, now=now)
        ends = now + overlap
        keys_repo.update_key(conn, key_id, expires_at=min(ends, old.expires_at or ends))
    return created


def lookup_key(ctx: Context, lookup_id: str) -> Row[Any] | None:
    """The stored row for a lookup id (the verifier's one database read)."""
    with ctx.engine.connect() as conn:
        return keys_repo.key_by_lookup(conn, lookup_id)


def check_row(ctx: Context, row: Row[Any] | None, plaintext: str, now: datetime) -> Principal:
    """Compare the HMAC in constant time, then revocation and expiry; the caller's identity."""
    m = row._mapping if row is not None else None
    expected = m["key_hash"] if m is not None else "0" * 64
    actual = key_hash(ctx.settings.secret.get_secret_value(), plaintext)
    if not hmac.compare_digest(expected, actual) or m is None:
        raise KeyRejected("invalid", "the API key is not valid")
    if m["revoked_at"] is not None:
        raise KeyRejected("revoked", "the API key was revoked")
    if m["expires_at"] is not None and m["expires_at"] <= now:
        raise KeyRejected("expired", "the API key has expired")
    scopes = frozenset(m["scopes"])
    return Principal(m["id"], m["lookup_id"], m["account"], scopes, m["plan"], m["expires_at"])


@dataclass(frozen=True, slots=True)
class _Verified:
    """A key this process verified: reused until its row's cache lifetime or expiry ends."""

    plaintext: bytes
    principal: Principal
    fresh_until: float  # monotonic: when the row it was checked against goes stale
    expires_at: float  # epoch seconds (inf: never)


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


class KeyVerifier:
    """Verifies presented keys; rows are cached for `ttl` seconds per process.

    The cache bounds how long a revocation made by *another* process takes to bite; a
    revocation through this process is dropped from its cache at once. A key verified
    against a cached row is remembered with its principal until that row goes stale, so a
    repeat costs one constant-time comparison instead of the checksum and the HMAC.
    """

    def __init__(self, ctx: Context, ttl: float = 2.0) -> None:
        self._ctx, self._ttl = ctx, ttl
        self._rows: dict[str, tuple[float, Row[Any] | None]] = {}
        self._verified: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def verify(self, plaintext: str, now: datetime | None = None) -> Principal:
        """The principal of a presented key, or `KeyRejected` with a reason."""
        lookup = parse_key(plaintext)  # before any I/O
        hit = self.cached(lookup)
        row = hit[0] if hit is not None else self.load(lookup)
        return self.check(plaintext, row, now)

    def recently_verified(self, plaintext: str) -> Principal | None:
        """The principal of a key verified here within the row cache lifetime, if any."""
        hit = self._verified.get(plaintext[len(PREFIX) : len(PREFIX) + _LOOKUP_LEN])
        if (
            hit is None
            or hit.fresh_until <= time.monotonic()
            or hit.expires_at <= time.time()
            or not hmac.compare_digest(hit.plaintext, plaintext.encode())
        ):
            return None
        return hit.principal

    def due(self, lookup: str) -> bool:
        """Whether a cached row is past half its lifetime: time to re-read it in the background,
        so busy keys never wait for the database when the row would go stale."""
        hit = self._rows.get(lookup)
        return hit is None or time.monotonic() - hit[0] >= self._ttl / 2

    def cached(self, lookup: str) -> tuple[Row[Any] | None] | None:
        """`(row,)` when the lookup id's row (or its absence) is cached and fresh, else None."""
        hit = self._rows.get(lookup)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return (hit[1],)
        return None

    def load(self, lookup: str) -> Row[Any] | None:
        """Read a row from the database and cache it."""
        row = lookup_key(self._ctx, lookup)
        with self._lock:
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[lookup] = (time.monotonic(), row)
        return row

    def check(self, plaintext: str, row: Row[Any] | None, now: datetime | None = None) -> Principal:
        """Verify a parsed key against its row (constant-time HMAC, revocation, expiry)."""
        principal = check_row(self._ctx, row, plaintext, now or datetime.now(UTC))
        if now is None and row is not None:
            self._remember(plaintext, principal, row)
        return principal

    def _remember(self, plaintext: str, principal: Principal, row: Row[Any]) -> None:
        loaded = self._rows.get(principal.lookup_id)
        if loaded is None or loaded[1] is not row:
            return  # checked against a row that is no longer the cached one
        expires = row._mapping["expires_at"]
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[principal.lookup_id] = _Verified(
                plaintext.encode(),
                principal,
                loaded[0] + self._ttl,
                _epoch(expires) if expires is not None else math.inf,
            )

    def forget(self, lookup_id: str) -> None:
        """Drop a cached row (after a revoke or rotate through this process)."""
        with self._lock:
            self._rows.pop(lookup_id, None)
            self._verified.pop(lookup_id, None)


# --- usage ---------------------------------------------------------------------------------


def epoch_day(when: datetime) -> int:
    """Days since 1970-01-01 of a UTC instant."""
    return (when.astimezone(UTC).date() - EPOCH).days


@dataclass
class UsageMeter:
    """Counts requests per key and day in memory; `flush` adds them to the database."""

    counts: dict[tuple[int, int], int] = field(default_factory=dict)
    last_used: dict[int, float] = field(default_factory=dict)  # epoch seconds
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key_id: int, when: float) -> None:
        """Count one request of `key_id` at `when` (epoch seconds: no datetime per request)."""
        slot = (key_id, int(when) // 86_400)  # epoch_day, without building a date
        with self.lock:
            self.counts[slot] = self.counts.get(slot, 0) + 1
            self.last_used[key_id] = when

    def flush(self, ctx: Context) -> int:
        """Write the pending counts; how many requests were written."""
        with self.lock:
            counts, self.counts = self.counts, {}
            last_used, self.last_used = self.last_used, {}
        if not counts:
            return 0
        when = {k: datetime.fromtimestamp(t, UTC) for k, t in last_used.items()}
        try:
            with ctx.engine.begin() as conn:
                keys_repo.add_usage(conn, counts, when)
        except sa.exc.OperationalError:  # database away, locked, a deadlock: the next flush
            self._restore(counts, last_used)  # writes them (the transaction wrote nothing)
            raise
        return sum(counts.values())

    def _restore(self, counts: dict[tuple[int, int], int], last_used: dict[int, float]) -> None:
        with self.lock:
            for slot, n in counts.items():
                self.counts[slot] = self.counts.get(slot, 0) + n
            for key_id, t in last_used.items():
                self.last_used[key_id] = max(t, self.last_used.get(key_id, t))


def usage(
    ctx: Context, account: str, *, start: date, end: date, cursor: str | None, limit: int
) -> UsagePage:
    """Requests per key and day of the account between `start` and `end` (inclusive)."""
    if end < start:
        raise invalid("query.end", "end is before start")
    after = None
    if cursor:
        data = decode_cursor("usage", cursor)
        after = (int(data["d"]), int(data["i"]))
    with ctx.engine.connect() as conn:
        rows = keys_repo.usage_of_account(
            conn,
            account,
            start_day=(start - EPOCH).days,
            end_day=(end - EPOCH).days,
            after=after,
            limit=limit + 1,
        )
    items = [UsageDay(EPOCH + timedelta(days=d), k, lk, n) for d, k, lk, n in rows[:limit]]
    more = len(rows) > limit
    last = items[-1] if items else None
    nxt = (
        encode_cursor("usage", d=(last.day - EPOCH).days, i=last.key_id) if more and last else None
    )
    return UsagePage(items, nxt)


# --- idempotency ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What an idempotency key already stands for: its request hash and (once done) answer."""

    request_hash: str
    status: int | None
    body: bytes
    content_type: str


def claim_idempotency(
    ctx: Context, owner: str, key_id: int | None, idem_key: str, request_hash: str
) -> StoredAnswer | None:
    """Reserve `idem_key` for `owner`; the earlier use instead, if there was one."""
    row = {
        "owner": owner,
        "key_id": key_id,
        "idem_key": idem_key,
        "request_hash": request_hash,
        "created_at": datetime.now(UTC),
    }
    with ctx.engine.begin() as conn:
        found = keys_repo.claim_idempotency(conn, row)
    if found is None:
        return None
    m = found._mapping
    return StoredAnswer(
        m["request_hash"], m["status"], m["response"] or b"", m["content_type"] or ""
    )


def finish_idempotency(
    ctx: Context, owner: str, idem_key: str, status: int, body: bytes, content_type: str
) -> None:
    """Store the first answer (callers redact secrets first)."""
    with ctx.engine.begin() as conn:
        keys_repo.finish_idempotency(
            conn, owner, idem_key, status=status, body=body, content_type=content_type
        )


def release_idempotency(ctx: Context, owner: str, idem_key: str) -> None:
    """Free a key whose first request failed, so a retry runs again."""
    with ctx.engine.begin() as conn:
        keys_repo.release_idempotency(conn, owner, idem_key)


DEMO_ACCOUNT = "demo"


def ensure_demo_key(ctx: Context) -> CreatedKey | ApiKey:
    """The local demo account's read key: created (plaintext returned once) on first run,
    afterwards the existing key without its plaintext, which is never stored."""
    page = list_keys(ctx, DEMO_ACCOUNT, cursor=None, limit=50)
    live = [k for k in page.items if k.revoked_at is None]
    if live:
        return live[0]
    return create_key(ctx, KeySpec(name="demo", scopes=("read",), account=DEMO_ACCOUNT))
