"""GCRA in process (the fallback and embedded limiter), key format, and the security helpers."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinlens.api.caching import CachedResponse, ResponseCache, etag_matches, redact
from coinlens.api.security import client_ip, key_in_query, presented_key, required_scope
from coinlens.services.keys import KEY_LENGTH, PREFIX, KeyRejected, new_plaintext, parse_key
from coinlens.services.ratelimit import Limit, LocalGcra, admitted, decide_row


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


MINUTE = (Limit("minute", 100, 60),)


def test_a_burst_admits_exactly_the_quota() -> None:
    gcra = LocalGcra(Clock())
    results = [gcra.hit(["k"], MINUTE).allowed for _ in range(250)]
    assert results.count(True) == 100
    assert results[:100] == [True] * 100


def _one_by_one(now: int, tats: list[int], limits: tuple[Limit, ...], count: int) -> list[tuple]:
    """Textbook GCRA, one request at a time: (allowed, retry µs, [(remaining, reset µs)])."""
    tats, out = list(tats), []
    for _ in range(count):
        cur = [max(t, now) for t in tats]
        waits = [c + lim.step_us - now - lim.span_us for c, lim in zip(cur, limits, strict=True)]
        allowed = all(w <= 0 for w in waits)
        if allowed:
            cur = [c + lim.step_us for c, lim in zip(cur, limits, strict=True)]
            tats = cur
        states = [
            ((lim.span_us - (c - now)) // lim.step_us, c - now)
            for c, lim in zip(cur, limits, strict=True)
        ]
        out.append((allowed, 0 if allowed else max(waits), states))
    return out


@settings(max_examples=300, deadline=None)
@given(
    quotas=st.lists(st.tuples(st.integers(1, 60), st.integers(1, 120)), min_size=1, max_size=3),
    offsets=st.lists(st.integers(-(10**8), 10**8), min_size=3, max_size=3),
    count=st.integers(1, 80),
)
def test_a_row_decided_at_once_equals_its_requests_one_by_one(
    quotas: list[tuple[int, int]], offsets: list[int], count: int
) -> None:
    # what the Redis script and client do for a batch of one subject (a prefix is admitted)
    limits = tuple(Limit(f"l{i}", q, w) for i, (q, w) in enumerate(quotas))
    now = 1_700_000_000_000_000
    tats = [max(0, now + o) for o in offsets[: len(limits)]]
    fit = admitted(now, tats, limits, count)
    got = decide_row(now, tats, limits, count, fit, "redis")
    want = _one_by_one(now, tats, limits, count)
    assert [d.allowed for d in got] == [w[0] for w in want]
    for d, (_, retry, states) in zip(got, want, strict=True):
        assert d.retry_after * 1_000_000 == pytest.approx(max(0, retry), abs=1e-3)
        assert [(s.remaining, s.reset * 1_000_000) for s in d.states] == [
            (max(0, r), pytest.approx(t, abs=1e-3)) for r, t in states
        ]
        # the advertised limit: fewest remaining, then the longest reset
        assert d.binding == min(d.states, key=lambda s: (s.remaining, -s.reset))


def test_after_the_burst_one_request_per_emission_interval() -> None:
    clock = Clock()
    gcra = LocalGcra(clock)
    for _ in range(100):
        gcra.hit(["k"], MINUTE)
    denied = gcra.hit(["k"], MINUTE)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(0.6, abs=1e-6)
    clock.now += 0.599
    assert not gcra.hit(["k"], MINUTE).allowed
    clock.now += 0.001
    assert gcra.hit(["k"], MINUTE).allowed
    assert not gcra.hit(["k"], MINUTE).allowed


def test_remaining_and_reset_count_down_and_refill() -> None:
    clock = Clock()
    gcra = LocalGcra(clock)
    first = gcra.hit(["k"], MINUTE).binding
    assert (first.remaining, first.reset) == (99, pytest.approx(0.6))
    for _ in range(49):
        state = gcra.hit(["k"], MINUTE).binding
    assert (state.remaining, state.reset) == (50, pytest.approx(30.0))
    clock.now += 30
    assert gcra.hit(["k"], MINUTE).binding.remaining == 99


def test_the_tightest_of_several_limits_binds_and_denials_consume_nothing() -> None:
    clock = Clock()
    gcra = LocalGcra(clock)
    limits = (Limit("minute", 10, 60), Limit("day", 15, 86_400))
    allowed = sum(gcra.hit(["m", "d"], limits).allowed for _ in range(40))
    assert allowed == 10
    clock.now += 60  # the minute refills, the day has 5 left
    allowed = sum(gcra.hit(["m", "d"], limits).allowed for _ in range(40))
    assert allowed == 5
    decision = gcra.hit(["m", "d"], limits)
    assert decision.binding.limit.name == "day"
    assert decision.retry_after > 3600


def test_huge_quotas_keep_a_positive_interval() -> None:
    gcra = LocalGcra(Clock())
    huge = (Limit("minute", 10**9, 60),)
    assert all(gcra.hit(["h"], huge).allowed for _ in range(1000))
    assert gcra.hit(["h"], huge).binding.remaining > 0


def test_subjects_are_independent() -> None:
    gcra = LocalGcra(Clock())
    for _ in range(100):
        gcra.hit(["a"], MINUTE)
    assert not gcra.hit(["a"], MINUTE).allowed
    assert gcra.hit(["b"], MINUTE).allowed


# --- key format ---------------------------------------------------------------------------


def test_new_keys_parse_to_their_lookup_id() -> None:
    for _ in range(50):
        key, lookup = new_plaintext()
        assert key.startswith(PREFIX)
        assert len(key) == KEY_LENGTH
        assert parse_key(key) == lookup


def test_every_single_character_change_is_rejected_as_malformed() -> None:
    key, _ = new_plaintext()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
    rng = random.Random(5)
    for i in range(len(key)):
        for c in rng.sample(alphabet, 12):
            if c == key[i]:
                continue
            with pytest.raises(KeyRejected) as err:
                parse_key(key[:i] + c + key[i + 1 :])
            assert err.value.reason == "malformed"


@pytest.mark.parametrize(
    "raw", ["", "cl_live_", "cl_test_" + "a" * 50, "x" * 58, "cl_live_" + "é" * 50]
)
def test_junk_is_malformed(raw: str) -> None:
    with pytest.raises(KeyRejected):
        parse_key(raw)


def test_truncated_and_extended_keys_are_malformed() -> None:
    key, _ = new_plaintext()
    for bad in (key[:-1], key + "a", " " + key):
        with pytest.raises(KeyRejected):
            parse_key(bad)


# --- request helpers ----------------------------------------------------------------------


def test_keys_come_from_x_api_key_or_bearer_only() -> None:
    assert presented_key({b"x-api-key": b"k1"}) == "k1"
    assert presented_key({b"authorization": b"Bearer k2"}) == "k2"
    assert presented_key({b"authorization": b"bearer  k3 "}) == "k3"
    assert presented_key({b"authorization": b"Basic dXNlcg=="}) is None
    assert presented_key({}) is None


def test_keys_in_the_query_string_are_spotted() -> None:
    assert key_in_query(b"api_key=abc")
    assert key_in_query(b"limit=5&q=cl_live_abc")
    assert key_in_query(b"%61pi_key=abc")  # percent-encoded names are decoded first
    assert key_in_query(b"ACCESS_TOKEN=abc")
    assert not key_in_query(b"limit=5&q=eth")
    assert not key_in_query(b"")


@pytest.mark.parametrize(
    ("method", "path", "has_key", "scope"),
    [
        ("POST", "/v1/keys", False, None),
        ("POST", "/v1/keys", True, "admin"),
        ("GET", "/v1/keys", True, "admin"),
        ("DELETE", "/v1/keys/3", True, "admin"),
        ("POST", "/v1/keys/3/rotate", True, "admin"),
        ("GET", "/v1/tokens/ETH", True, "read"),
        ("GET", "/v1/usage", True, "read"),
        ("POST", "/v1/alerts", True, "alerts:write"),
        ("DELETE", "/v1/alerts/1", True, "alerts:write"),
        ("GET", "/v1/keysmith", True, "read"),
    ],
)
def test_scope_table(method: str, path: str, has_key: bool, scope: str | None) -> None:
    assert required_scope(method, path, has_key=has_key) == scope


def test_forwarded_for_is_only_believed_from_trusted_proxies() -> None:
    spoof = b"1.2.3.4"
    assert client_ip("203.0.113.9", spoof, []) == "203.0.113.9"
    assert client_ip("203.0.113.9", spoof, ["10.0.0.0/8"]) == "203.0.113.9"
    assert client_ip("10.0.0.5", b"1.2.3.4, 198.51.100.7", ["10.0.0.0/8"]) == "198.51.100.7"
    assert client_ip("10.0.0.5", b"198.51.100.7, 10.0.0.9", ["10.0.0.0/8"]) == "198.51.100.7"
    assert client_ip("10.0.0.5", b"not-an-ip", ["10.0.0.0/8"]) == "not-an-ip"
    assert client_ip("10.0.0.5", None, ["10.0.0.0/8"]) == "10.0.0.5"


def test_etag_comparison_and_redaction() -> None:
    assert etag_matches('"a", W/"b"', '"b"')
    assert etag_matches("*", '"x"')
    assert not etag_matches('"a"', '"b"')
    key, _ = new_plaintext()
    assert key.encode() not in redact(b'{"key":"' + key.encode() + b'"}')
    listed = b'{"prefix":"' + key[:20].encode() + '…"}'.encode()  # the key's listed prefix
    assert redact(listed) == listed


def test_an_expired_answer_is_rebuilt_once_and_served_stale_meanwhile() -> None:
    cache = ResponseCache(ttl=2.0)
    assert cache.lookup("k") == (None, True)  # nothing yet: this caller builds it
    cache.release("k")
    old = CachedResponse(b"{}", (), '"e"', "/v1/x", expires=time.monotonic() - 1.0)
    cache.put("k", old)
    assert cache.lookup("k") == (None, True)  # expired: the first caller rebuilds it
    assert cache.lookup("k") == (old, False)  # the others get the previous copy meanwhile
    cache.release("k")
    new = CachedResponse(b"[]", (), '"f"', "/v1/x", expires=time.monotonic() + 2.0)
    cache.put("k", new)
    assert cache.lookup("k") == (new, False)
    assert dict(new.start)[b"content-length"] == b"2"
    ancient = CachedResponse(b"{}", (), '"e"', "/v1/x", expires=time.monotonic() - 60.0)
    cache.put("k", ancient)
    assert cache.lookup("k") == (None, True)
    assert cache.lookup("k") == (None, False)  # too old to serve even while rebuilding
