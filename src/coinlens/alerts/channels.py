"""Alert channels: Apprise URL validation, the SSRF guard, and one send through Apprise.

Supported schemes: email (`mailto://`, `mailtos://`), Telegram (`tgram://`), Discord
(`discord://`), Slack (`slack://`) and generic webhooks (`json://`, `jsons://`).

Webhook and SMTP hosts are user-chosen, so they are resolved and refused when any address is
loopback, link-local, private, reserved, multicast or a cloud metadata endpoint — unless the
admin allow-list (`COINLENS_ALERTS_ALLOW_HOSTS`: host names, IPs or CIDRs) permits it. The
check runs at creation and again before every send (DNS may have changed in between).

Apprise 2.x reports only success/failure per service; the HTTP status and the `Retry-After` /
Discord bucket headers are read from the `requests` responses it makes, through a response
hook that records into a per-call context variable (inactive outside `send`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import ipaddress
import logging
import smtplib
import socket
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import apprise
import requests
import requests.api
import requests.exceptions as rex
import requests.sessions

from coinlens.alerts import transport
from coinlens.domain.errors import Problem, TemporaryError, ValidationFailed

SCHEMES = {
    "mailto": "email",
    "mailtos": "email",
    "tgram": "telegram",
    "discord": "discord",
    "slack": "slack",
    "json": "webhook",
    "jsons": "webhook",
}
# Services whose host is fixed by Apprise (public APIs) need no SSRF check.
_USER_HOST_KINDS = {"email", "webhook"}
# Seconds between two messages to one destination (Telegram ~1/s per chat, Slack ~1/s).
MIN_INTERVAL = {"telegram": 1.0, "slack": 1.0, "discord": 0.0, "webhook": 0.0, "email": 0.0}
IDEMPOTENCY_HEADER = "Idempotency-Key"
EMAIL_KEY_HEADER = "X-Coinlens-Idempotency-Key"
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
}
# Apprise's email plugin imports the stdlib `imghdr`, deprecated on 3.11 (its own shim warns);
# loading it once here, quietly, keeps that third-party warning out of our logs and tests.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    importlib.import_module("imghdr")

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; not `is_private` in 3.11
_RECORDER: ContextVar[list[requests.Response] | None] = ContextVar("_RECORDER", default=None)
# (url, exception) of the requests that failed without an answer, inside `send`
_FAILURES: ContextVar[list[tuple[str, BaseException]] | None] = ContextVar(
    "_FAILURES", default=None
)
_PERMANENT = {400, 401, 403, 404, 405, 410, 413, 422}
_MOVED = {301, 308}  # permanent redirects: every retry would be redirected again
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Channel:
    """A validated channel URL: its kind, a redacted form for display and a pacing key."""

    url: str
    kind: str
    redacted: str
    destination: str
    host: str | None


@dataclass(frozen=True)
class SendOutcome:
    """What one send attempt achieved, as far as the transport lets us know."""

    ok: bool
    permanent: bool = False
    status: int | None = None
    retry_after: float | None = None
    pace_seconds: float | None = None
    error: str | None = None


def _problem(location: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{location}: {reason}", [Problem(location, reason)])


def _instantiate(url: str, asset: Any = None) -> Any:
    asset = asset or apprise.AppriseAsset()
    return apprise.Apprise.instantiate(url, asset=asset, suppress_exceptions=True)


def parse_channel(url: str, location: str = "channels") -> Channel:
    """Validate an Apprise URL of a supported scheme (no network); ValidationFailed if wrong."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        allowed = ", ".join(f"{s}://" for s in sorted(SCHEMES))
        # never the URL itself: one pasted without its scheme is often a bare token
        what = f"unsupported channel scheme {scheme[:16]!r}" if scheme else "no scheme (x://)"
        raise _problem(location, f"{what}; use {allowed}")
    if len(url) > 2048:
        raise _problem(location, "channel URL longer than 2048 characters")
    plugin = _instantiate(url)
    if plugin is None:
        raise _problem(location, f"not a valid {scheme}:// URL (see docs/alerts.md for the form)")
    kind = SCHEMES[scheme]
    # email connects to `smtp_host` (the `smtp=` parameter), which may differ from `host`
    raw_host = getattr(plugin, "smtp_host", None) or plugin.host if kind == "email" else plugin.host
    host = str(raw_host) if kind in _USER_HOST_KINDS and raw_host else None
    if kind in _USER_HOST_KINDS and not host:
        raise _problem(location, f"{scheme}:// URL has no host")
    ident = str(plugin.url_identifier or plugin.url(privacy=False))
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return Channel(
        url=url,
        kind=kind,
        redacted=str(plugin.url(privacy=True)).split("?", 1)[0],
        destination=f"{kind}:{digest}",
        host=host,
    )


def warm_up() -> None:
    """Load Apprise's plugin registry now (~0.1 s of CPU), not on a worker's first send."""
    _instantiate("json://localhost/")


@functools.lru_cache(maxsize=4096)
def parse_cached(url: str) -> Channel:
    """`parse_channel`, memoised: a URL's parse never changes (the worker parses per send)."""
    return parse_channel(url)


def _allowed(addr: IpAddress, host: str, allow: Sequence[str]) -> bool:
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _blocked(addr: IpAddress) -> bool:
    return (
        addr in _METADATA
        or addr in _SHARED
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_private
        or addr.is_reserved
        or addr.is_multicast
        or addr.is_unspecified
        or (isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None)
        or (isinstance(addr, ipaddress.IPv6Address) and _blocked_6to4(addr))
    )


def _blocked_6to4(addr: ipaddress.IPv6Address) -> bool:
    """2002::/16 carries an IPv4 address (6to4): blocked when that address is."""
    embedded = addr.sixtofour
    return embedded is not None and _blocked(embedded)


def resolve(host: str) -> list[IpAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TemporaryError(f"cannot resolve {host}: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


class DnsCache:
    """Resolutions kept `ttl` seconds per host, so a busy worker does not resolve per send.

    Failures are not cached; a host re-resolves once its entry is older than the TTL.
    """

    def __init__(self, ttl: float = 30.0, clock: Any = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._entries: dict[str, tuple[float, list[IpAddress]]] = {}
        self._lock = threading.Lock()

    def resolve(self, host: str) -> list[IpAddress]:
        """`resolve(host)`, answered from the cache while fresh."""
        now = self._clock()
        with self._lock:
            hit = self._entries.get(host)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        addresses = resolve(host)
        with self._lock:
            if len(self._entries) > 10_000:  # bounded: drop everything rather than grow
                self._entries.clear()
            self._entries[host] = (now, addresses)
        return addresses


def check_ssrf(
    channel: Channel,
    allow: Sequence[str],
    location: str = "channels",
    dns: DnsCache | None = None,
) -> None:
    """Refuse a user-chosen host resolving to a private/internal address not allow-listed."""
    if channel.host is None:
        return
    try:
        addresses = dns.resolve(channel.host) if dns is not None else resolve(channel.host)
    except TemporaryError as exc:
        raise _problem(location, f"host {channel.host} does not resolve") from exc
    for addr in addresses:
        if _blocked(addr) and not _allowed(addr, channel.host, allow):
            raise _problem(  # the address is not named: the answer must not map internal DNS
                location,
                f"host {channel.host} is not a public internet address (private, loopback, "
                "link-local or metadata); an admin must allow-list it "
                "(COINLENS_ALERTS_ALLOW_HOSTS)",
            )


def validate_channel(url: str, allow: Sequence[str], location: str = "channels") -> Channel:
    """Parse and SSRF-check a channel URL, as at rule creation."""
    channel = parse_channel(url, location)
    check_ssrf(channel, allow, location)
    return channel


def _with_params(url: str, params: dict[str, str]) -> str:
    # Not urlsplit: Apprise URLs use `#` for channels (slack://…/#alerts), not as a fragment.
    base, _, raw = url.partition("?")
    query = [(k, v) for k, v in parse_qsl(raw, keep_blank_values=True) if k not in params]
    return base + "?" + urlencode([*query, *params.items()])


def _send_url(channel: Channel, key: str, timeout: float) -> str:
    # redirect=no: a 3xx is a failed send, never followed — following one would reach a
    # host the SSRF check never saw (e.g. a webhook answering 302 to a metadata address).
    params = {"retry": "0", "redirect": "no", "cto": f"{timeout:g}", "rto": f"{timeout:g}"}
    if channel.kind == "webhook":
        params[f"+{IDEMPOTENCY_HEADER}"] = key
    elif channel.kind == "email":
        params[f"+{EMAIL_KEY_HEADER}"] = key
    return _with_params(channel.url, params)


def _record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    recorded = _RECORDER.get()
    if recorded is not None:
        recorded.append(response)


def _hooks_with_recorder() -> dict[str, list[Any]]:
    hooks: dict[str, list[Any]] = _ORIGINAL_HOOKS()
    hooks.setdefault("response", []).append(_record)
    return hooks


_ORIGINAL_HOOKS = requests.sessions.default_hooks
requests.sessions.default_hooks = _hooks_with_recorder

# Apprise plugins call `requests.request/post`, which open a new Session (and connection)
# per call. Inside `send`/`SenderPool.send` the call goes through the channel's
# `transport.KeptSession` instead (pooled objects keep their connection alive); elsewhere
# requests is unchanged.
_SESSION: ContextVar[requests.Session | None] = ContextVar("_SESSION", default=None)
_ORIGINAL_REQUEST = requests.api.request


def _request(method: str, url: str, **kwargs: Any) -> requests.Response:
    session = _SESSION.get()
    if session is None:
        return _ORIGINAL_REQUEST(method, url, **kwargs)
    try:
        return session.request(method=method, url=url, **kwargs)
    except rex.RequestException as exc:  # the plugin logs a vague line: keep the cause
        failures = _FAILURES.get()
        if failures is not None:
            failures.append((url, exc))
        raise


# typeshed spells out every keyword; `_request` forwards them all unchanged
requests.api.request = _request  # type: ignore[assignment]
requests.request = _request  # type: ignore[assignment]


def _session() -> requests.Session:
    return transport.KeptSession()


@contextmanager
def _recording() -> Iterator[tuple[list[requests.Response], list[tuple[str, BaseException]]]]:
    recorded: list[requests.Response] = []
    failures: list[tuple[str, BaseException]] = []
    token, failed = _RECORDER.set(recorded), _FAILURES.set(failures)
    try:
        yield recorded, failures
    finally:
        _RECORDER.reset(token)
        _FAILURES.reset(failed)


def _chain_text(exc: BaseException) -> str:
    seen: list[str] = []
    cur: BaseException | None = exc
    while cur is not None and len(seen) < 8:
        seen.append(f"{type(cur).__name__} {cur}")
        cur = cur.__cause__ or cur.__context__
    return " ".join(seen).lower()


_UNRESOLVED = ("name or service not known", "nodename nor servname", "name resolution",
               "getaddrinfo failed", "no address associated")  # fmt: skip


def _network_reason(where: str, text: str, timeout: float) -> str | None:
    """A reason for a failure without an answer, from the exception text (never the URL's
    path or credentials: a Telegram bot token sits in the path)."""
    if "refused" in text:
        return f"connection refused by {where}"
    if any(k in text for k in _UNRESOLVED):
        return f"{where.rsplit(':', 1)[0]} does not resolve"
    if "timed out" in text or "timeout" in text:
        return f"no answer from {where} within {timeout:g} s (timed out)"
    if "remotedisconnected" in text or "aborted" in text or "reset by peer" in text:
        return f"{where} closed the connection without answering"
    if "certificate verify failed" in text:
        return f"TLS certificate of {where} not trusted (certificate verify failed)"
    if "ssl" in text:
        return f"TLS handshake with {where} failed"
    return None


def _http_reason(url: str, exc: BaseException, timeout: float) -> str:
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    if isinstance(exc, rex.ConnectTimeout):
        return f"no connection to {where} within {timeout:g} s (timed out)"
    if isinstance(exc, rex.ReadTimeout):
        return f"no answer from {where} within {timeout:g} s (timed out)"
    text = _chain_text(exc)
    return _network_reason(where, text, timeout) or f"connection to {where} failed"


def _smtp_reason(host: str, exc: BaseException, timeout: float) -> tuple[str, bool]:
    """(reason, permanent) of an SMTP failure: a 5xx reply (credentials rejected, sender or
    recipients refused) or a missing AUTH/STARTTLS is permanent; a 4xx reply or a network
    error is retried."""
    code, text = None, ""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        code = max(c for c, _ in replies) if replies else None  # 5xx if any is permanent
        text = "; ".join(f"{a}: {c} {_smtp_text(m)}" for a, (c, m) in exc.recipients.items())
        return f"SMTP server {host} refused the recipients ({text})", (code or 0) >= 500
    if isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, _smtp_text(exc.smtp_error)
        what = "rejected the login" if code in (530, 534, 535) else "refused the message"
        return f"SMTP server {host} {what}: {code} {text}".strip(), code >= 500
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # no AUTH / STARTTLS offered
        return f"SMTP server {host}: {exc}", True
    reason = _network_reason(host, _chain_text(exc), timeout)
    return reason or f"SMTP with {host} failed: {type(exc).__name__}", False


def _smtp_text(message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return " ".join(text.split())[:300]


def _recording_smtp(method: Any) -> Any:
    """An smtplib method that also records its exception for `send` (re-raised unchanged)."""

    @functools.wraps(method)
    def wrapper(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (OSError, smtplib.SMTPException) as exc:
            failures = _FAILURES.get()
            if failures is not None:
                failures.append((str(getattr(self, "_host", "") or "SMTP server"), exc))
            raise

    return wrapper


# Apprise's email plugin catches every SMTP error and logs only "Connection error while
# submitting email": inside `send` the exception is kept, so the log says what went wrong
# (a rejected login is not a connection problem, and is not retried).
for _name in ("connect", "starttls", "login", "sendmail"):
    setattr(smtplib.SMTP, _name, _recording_smtp(getattr(smtplib.SMTP, _name)))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class _Trace:
    """What one notify call left behind: responses, failed requests, Apprise's log lines."""

    responses: list[requests.Response]
    failures: list[tuple[str, BaseException]]
    errors: list[str]  # warnings and above


def _redirect_reason(response: requests.Response) -> str:
    """A redirect is never followed (SSRF): say where it pointed (host only: a path may carry
    a token) and what to do about it."""
    target = urlsplit(response.headers.get("Location") or "")
    to = f" to {target.scheme}://{target.hostname}" if target.hostname else ""
    upgrade = target.scheme == "https" and str(response.url or "").startswith("http://")
    hint = " (jsons:// for HTTPS)" if upgrade else ""
    return (
        f"HTTP {response.status_code}: redirected{to}; redirects are not followed: put the final "
        f"URL in the channel{hint}"
    )


def _outcome(ok: bool, t: _Trace, channel: Channel | None, timeout: float) -> SendOutcome:
    last = t.responses[-1] if t.responses else None
    status = last.status_code if last is not None else None
    retry_after = pace = None
    if last is not None:
        retry_after = _seconds(last.headers.get("Retry-After"))
        if last.headers.get("X-RateLimit-Remaining") == "0":
            pace = _seconds(last.headers.get("X-RateLimit-Reset-After"))
    if ok:
        return SendOutcome(ok=True, status=status, pace_seconds=pace)
    error = (t.errors[-1] if t.errors else "delivery failed")[:500]
    permanent = status in _PERMANENT
    if last is not None and status is not None and 300 <= status < 400:
        error, permanent = _redirect_reason(last), status in _MOVED
    elif status is not None:
        error = f"HTTP {status}: {error}"
    elif t.failures:  # no answer, or an SMTP error: say why (Apprise logs a vague line)
        where, exc = t.failures[-1]
        if isinstance(exc, rex.RequestException):
            error = _http_reason(where, exc, timeout)
        else:
            error, permanent = _smtp_reason(where, exc, timeout)
    return SendOutcome(
        ok=False,
        permanent=permanent,
        status=status,
        retry_after=retry_after,
        pace_seconds=pace,
        error=error,
    )


def _notifier(channel: Channel, key: str, timeout: float) -> Any:
    # One service per Apprise object, sent on the caller's thread: no async_mode pool, and
    # no service_timeout (it routes every send through Apprise's process-wide executor of
    # cpu+4 threads, which capped a worker's parallel sends at 6). The connect/read timeouts
    # (`cto`/`rto`) still bound each request.
    asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
    plugin = _instantiate(_send_url(channel, key, timeout), asset)
    if plugin is None:
        return None
    # Pacing is ours (outbox.Pacer); a reused plugin must not add Apprise's own throttle sleep.
    plugin.request_rate_per_sec = 0
    notifier = apprise.Apprise(asset=asset)
    notifier.add(plugin)
    return notifier


def _set_key(notifier: Any, channel: Channel, key: str) -> None:
    header = {"webhook": IDEMPOTENCY_HEADER, "email": EMAIL_KEY_HEADER}.get(channel.kind)
    if header is not None:
        for plugin in notifier:
            plugin.headers[header] = key


def send(channel: Channel, title: str, body: str, key: str, timeout: float = 10.0) -> SendOutcome:
    """Send one message through one channel (one Apprise object, its own retries off)."""
    notifier = _notifier(channel, key, timeout)
    if notifier is None:
        return SendOutcome(ok=False, permanent=True, error="channel URL no longer valid")
    session = _session()  # the worker's transport, for one send (`alerts test`, tests)
    token = _SESSION.set(session)
    try:
        return _notify(notifier, title, body, channel, timeout)
    finally:
        _SESSION.reset(token)
        session.close()


class SenderPool:
    """Reusable Apprise objects, each with its kept-alive HTTP session, per channel URL.

    Building an Apprise object parses the URL and sets up the plugin, and a fresh session
    opens a new connection: together most of a send's CPU. Objects are checked out one send
    at a time (plugins are not thread-safe; the key header is set per send), so several
    threads may send to one URL, each with its own object. Keyed by URL: a channel whose URL
    changes gets a new object; idle ones of the least recent URLs are dropped beyond `max_urls`.
    """

    def __init__(self, timeout: float = 10.0, max_urls: int = 1024) -> None:
        self.timeout, self.max_urls = timeout, max_urls
        self._idle: OrderedDict[str, list[tuple[Any, requests.Session]]] = OrderedDict()
        self._lock = threading.Lock()

    def _take(self, channel: Channel, key: str) -> tuple[Any, requests.Session] | None:
        with self._lock:
            idle = self._idle.get(channel.url)
            if idle:
                self._idle.move_to_end(channel.url)
                return idle.pop()
        notifier = _notifier(channel, key, self.timeout)
        return None if notifier is None else (notifier, _session())

    def _give(self, channel: Channel, entry: tuple[Any, requests.Session]) -> None:
        dropped: list[tuple[Any, requests.Session]] = []
        with self._lock:
            self._idle.setdefault(channel.url, []).append(entry)
            self._idle.move_to_end(channel.url)
            while len(self._idle) > self.max_urls:
                dropped.extend(self._idle.popitem(last=False)[1])
        for _, session in dropped:
            session.close()

    def send(self, channel: Channel, title: str, body: str, key: str) -> SendOutcome:
        """Like `send`, on a reused Apprise object and connection for the channel's URL."""
        entry = self._take(channel, key)
        if entry is None:
            return SendOutcome(ok=False, permanent=True, error="channel URL no longer valid")
        token = _SESSION.set(entry[1])
        try:
            _set_key(entry[0], channel, key)
            return _notify(entry[0], title, body, channel, self.timeout)
        finally:
            _SESSION.reset(token)
            self._give(channel, entry)


def _notify(
    notifier: Any, title: str, body: str, channel: Channel | None = None, timeout: float = 10.0
) -> SendOutcome:
    errors: list[str] = []

    def on_log(entry: Any, _service: Any) -> None:
        level = getattr(entry, "level", 0)
        if isinstance(level, str):
            level = logging.getLevelNamesMapping().get(level.upper(), 0)
        if isinstance(level, int) and level >= logging.WARNING:
            errors.append(str(getattr(entry, "message", entry)))

    with _recording() as (responses, failures):
        # TEXT: our bodies are plain text, so Apprise escapes them for HTML/Markdown services
        # (Telegram's HTML parse mode, Slack) and sends email as text/plain with its lines
        # (unset, email went out as HTML with every line run together)
        result = notifier.notify(
            body=body,
            title=title,
            body_format=apprise.NotifyFormat.TEXT,
            log_callback=on_log,
        )
    return _outcome(bool(result), _Trace(responses, failures, errors), channel, timeout)
