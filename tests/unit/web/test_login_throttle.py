"""The owner login's throttle: free tries, then waits that double, then forgetting."""

from __future__ import annotations

from coinlens.web.auth import LoginThrottle


def test_waits_double_after_the_free_failures_and_are_capped() -> None:
    t = LoginThrottle()
    for _ in range(LoginThrottle.FREE_FAILURES):
        assert t.wait("a", now=100.0) == 0.0
        t.failed("a", now=100.0)
    assert t.wait("a", now=100.0) == 1.0
    assert t.wait("a", now=101.0) == 0.0
    assert t.wait("b", now=100.0) == 0.0  # per client
    t.failed("a", now=101.0)
    assert t.wait("a", now=101.0) == 2.0
    for _ in range(30):
        t.failed("a", now=200.0)
    assert t.wait("a", now=200.0) == LoginThrottle.MAX_WAIT


def test_a_success_or_a_quiet_max_wait_forgets_the_client() -> None:
    t = LoginThrottle()
    for _ in range(LoginThrottle.FREE_FAILURES + 3):
        t.failed("a", now=0.0)
        t.failed("b", now=0.0)
    t.succeeded("a")
    assert t.wait("a", now=0.0) == 0.0
    assert t.wait("b", now=LoginThrottle.MAX_WAIT + 1) == 0.0
    t.failed("b", now=LoginThrottle.MAX_WAIT + 1)  # counted from scratch
    assert t.wait("b", now=LoginThrottle.MAX_WAIT + 1) == 0.0


def test_remembers_a_bounded_number_of_clients() -> None:
    t = LoginThrottle(max_clients=3)
    for client in "abcd":
        for _ in range(LoginThrottle.FREE_FAILURES):
            t.failed(client, now=0.0)
    assert t.wait("a", now=0.0) == 0.0  # the oldest went
    assert t.wait("d", now=0.0) == 1.0
