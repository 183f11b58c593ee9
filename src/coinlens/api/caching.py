"""HTTP caching: strong ETags, `If-None-Match` → 304, Cache-Control, and pre-serialised answers.

Hot read endpoints (the token detail, the token and signal lists, grades) are kept as the
exact bytes last sent, for `response_cache_seconds`, keyed by path and query: a repeat is
answered without routing, validation, database or serialisation. Auth, rate limits and
metering still run first — only the body is reused. Data changes once per pipeline run, so
a couple of seconds of reuse costs no freshness that matters. When an entry expires, one
request rebuilds it while the others keep getting the previous copy (for at most
`STALE_SECONDS`): a busy endpoint never sends every in-flight request to the database at once.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coinlens.api.errors import problem
from coinlens.services import keys as key_service
from coinlens.services.context import Context

_IDEM_KEY = re.compile(r"[\x21-\x7e]{1,128}")
_KEY_TEXT = re.compile(  # a whole key only: the listed `prefix` ("cl_live_<lookup>…") stays
    rb"%s[0-9A-Za-z]{%d}(?![0-9A-Za-z])"
    % (key_service.PREFIX.encode(), key_service.KEY_LENGTH - len(key_service.PREFIX))
)
HOT_PATHS = re.compile(r"/v1/(tokens(/[^/]+)?|grades|signals)")
_MAX_ENTRIES = 4_096
STALE_SECONDS = 10.0  # longest an expired entry is served while one request rebuilds it
PRIVATE_MAX_AGE = 60


def etag_of(body: bytes) -> str:
    """A strong validator of a response body."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` against our ETag (`*` matches all)."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def cache_control_for(method: str, path: str) -> str:
    """Key material and usage are never stored by caches; data is private to the caller."""
    if method not in {"GET", "HEAD"} or path.startswith(("/v1/keys", "/v1/usage")):
        return "no-store"
    return f"private, max-age={PRIVATE_MAX_AGE}"


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A 200 answer ready to send again."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    etag: str
    route: str
    expires: float
    control: bytes = f"private, max-age={PRIVATE_MAX_AGE}".encode()
    # the 200's headers, built once: a hit only appends the per-request ones
    start: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        start = (
            *self.headers,
            (b"content-length", str(len(self.body)).encode()),
            (b"etag", self.etag.encode()),
            (b"cache-control", self.control),
        )
        object.__setattr__(self, "start", start)


class ResponseCache:
    """Pre-serialised answers of hot GET endpoints, each for `ttl` seconds (0 disables)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, CachedResponse] = {}
        self._rebuilding: set[str] = set()
        self._lock = threading.Lock()

    def eligible(self, method: str, path: str) -> bool:
        """Whether answers to this request may be reused."""
        return self.ttl > 0 and method == "GET" and HOT_PATHS.fullmatch(path) is not None

    def get(self, key: str) -> CachedResponse | None:
        """A fresh entry, if any."""
        entry = self._entries.get(key)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry

    def lookup(self, key: str) -> tuple[CachedResponse | None, bool]:
        """An entry to answer with, and whether the caller must rebuild it (then `release`).

        A fresh entry is served; an expired one is rebuilt by the first caller, and served
        to the others meanwhile (within `STALE_SECONDS` of its expiry).
        """
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry.expires >= now:
            return entry, False
        with self._lock:
            if key not in self._rebuilding:
                self._rebuilding.add(key)
                return None, True
        if entry is not None and entry.expires + STALE_SECONDS >= now:
            return entry, False
        return None, False

    def release(self, key: str) -> None:
        """The rebuild claimed by `lookup` is over (stored or not)."""
        with self._lock:
            self._rebuilding.discard(key)

    def put(self, key: str, entry: CachedResponse) -> None:
        """Keep a 200 answer until `entry.expires`."""
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = entry

    def clear(self) -> None:
        """Forget every entry (after data changed in this process)."""
        with self._lock:
            self._entries.clear()


# --- Idempotency-Key on POST ------------------------------------------------------------------


def _problem(scope: Scope, status: int, suffix: str, detail: str) -> ASGIApp:
    return problem(Request(scope), status, detail=detail, type_=f"urn:coinlens:problem:{suffix}")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def redact(body: bytes) -> bytes:
    """The body with every key plaintext blanked: stored replays never hold a usable key."""
    return _KEY_TEXT.sub(b"cl_live_[shown-once]", body)


async def idempotent(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, ctx: Context, owner: str, raw: bytes
) -> None:
    """Run a POST at most once per (caller, Idempotency-Key); repeats replay the first answer.

    The same key with a different request is refused (422); a repeat while the first is
    still running gets 409. Answers ≥ 500 are not kept, so the caller may retry them.
    """
    idem = raw.decode("latin-1")
    if not _IDEM_KEY.fullmatch(idem):
        bad = _problem(scope, 400, "idempotency-key-invalid", "1-128 printable ASCII characters")
        await bad(scope, receive, send)
        return
    try:
        body = await _read_body(receive)
    except HTTPException as exc:
        await _problem(scope, exc.status_code, "payload-too-large", str(exc.detail))(
            scope, receive, send
        )
        return
    digest = hashlib.sha256(
        b"\0".join([scope["method"].encode(), scope["path"].encode(), scope["query_string"], body])
    ).hexdigest()
    principal = scope.get("state", {}).get("principal")
    key_id = getattr(principal, "key_id", None)
    found = await run_in_threadpool(key_service.claim_idempotency, ctx, owner, key_id, idem, digest)
    if found is not None:
        await _replay(scope, receive, send, found, digest)
        return
    await _first_run(app, scope, send, ctx, (owner, idem), body)


async def _replay(
    scope: Scope, receive: Receive, send: Send, found: key_service.StoredAnswer, digest: str
) -> None:
    if found.request_hash != digest:
        detail = "this Idempotency-Key was used for a different request"
        await _problem(scope, 422, "idempotency-key-reused", detail)(scope, receive, send)
        return
    if found.status is None:
        detail = "the first request with this Idempotency-Key is still running"
        await _problem(scope, 409, "idempotency-key-in-flight", detail)(scope, receive, send)
        return
    headers = [
        (b"content-type", found.content_type.encode()),
        (b"content-length", str(len(found.body)).encode()),
        (b"idempotent-replayed", b"true"),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": found.status, "headers": headers})
    await send({"type": "http.response.body", "body": found.body})


async def _first_run(
    app: ASGIApp, scope: Scope, send: Send, ctx: Context, slot: tuple[str, str], body: bytes
) -> None:
    sent = [False]

    async def replay_body() -> Message:
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    status, content_type, chunks = [500], [""], []

    async def capture(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
            heads = dict(message.get("headers", ()))
            content_type[0] = heads.get(b"content-type", b"").decode("latin-1")
            message["headers"] = [*message.get("headers", ()), (b"cache-control", b"no-store")]
        else:
            chunks.append(message.get("body", b""))
        await send(message)

    try:
        await app(scope, replay_body, capture)
    except BaseException:
        await run_in_threadpool(key_service.release_idempotency, ctx, *slot)
        raise
    if status[0] >= 500:
        await run_in_threadpool(key_service.release_idempotency, ctx, *slot)
        return
    stored = redact(b"".join(chunks))
    await run_in_threadpool(
        key_service.finish_idempotency, ctx, *slot, status[0], stored, content_type[0]
    )
