"""The login throttle's curve, resets, independence of keys, memory bound and log lines (an injected clock)."""

from __future__ import annotations

import logging

import pytest

from shim.throttle import (
    LOGIN_FAILURE_MEMORY_SECONDS,
    LOGIN_FREE_FAILURES,
    LOGIN_LOCKOUT_MAX_SECONDS,
    LoginThrottle,
    address_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(clock=clock)


def fail(throttle: LoginThrottle, times: int, account: str = "admin", address: str = "10.0.0.9") -> None:
    for _ in range(times):
        throttle.failed(account, address)


def test_free_failures_then_doubling_lockouts_up_to_the_maximum(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, LOGIN_FREE_FAILURES)
    assert throttle.check("admin", "10.0.0.9") is None  # the free failures cost nothing
    lockouts = []
    for _ in range(12):
        throttle.failed("admin", "10.0.0.9")
        refusal = throttle.check("admin", "10.0.0.9")
        assert refusal is not None and refusal.scope == "address"
        lockouts.append(refusal.retry_after)
        clock.now += refusal.retry_after - 0.5
        assert throttle.check("admin", "10.0.0.9") is not None  # still locked just before the end
        clock.now += 0.5
        assert throttle.check("admin", "10.0.0.9") is None  # and free again at the end
    assert lockouts == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert max(lockouts) == LOGIN_LOCKOUT_MAX_SECONDS


def test_refused_attempts_do_not_extend_the_lockout(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, LOGIN_FREE_FAILURES + 3)  # locked for 4 s
    for _ in range(100):
        refusal = throttle.check("admin", "10.0.0.9")
        assert refusal is not None and refusal.retry_after == 4
    clock.now += 4
    assert throttle.check("admin", "10.0.0.9") is None


def test_success_resets_the_account_and_the_address(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, LOGIN_FREE_FAILURES + 1)
    clock.now += 1
    throttle.succeeded("Admin", "10.0.0.9")
    assert throttle.tracked() == (0, 0)
    throttle.failed("admin", "10.0.0.9")
    assert throttle.check("admin", "10.0.0.9") is None  # counting starts again from zero


def test_failures_are_forgotten_after_the_memory_window(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, LOGIN_FREE_FAILURES + 2)
    clock.now += LOGIN_FAILURE_MEMORY_SECONDS + 1
    assert throttle.check("admin", "10.0.0.9") is None
    throttle.failed("admin", "10.0.0.9")
    assert throttle.check("admin", "10.0.0.9") is None  # one failure after the window is the first again


def test_another_address_and_another_account_are_unaffected(throttle: LoginThrottle) -> None:
    fail(throttle, LOGIN_FREE_FAILURES + 4)
    assert throttle.check("admin", "10.0.0.9") is not None
    assert throttle.check("admin", "10.0.0.10") is None  # the real administrator, elsewhere, gets a password check
    assert throttle.check("helpdesk", "10.0.0.10") is None


def test_a_locked_account_refuses_only_addresses_that_have_been_failing(throttle: LoginThrottle) -> None:
    for number in range(LOGIN_FREE_FAILURES + 1):  # one failure each from many addresses: the account locks
        throttle.failed("admin", f"10.0.1.{number}")
    refusal = throttle.check("admin", "10.0.1.0")
    assert refusal is not None and refusal.scope == "account" and refusal.key == "admin"
    assert throttle.check("ADMIN", "10.0.1.0") is not None  # names in any case are one account
    assert throttle.check("helpdesk", "10.0.1.0") is None
    assert throttle.check("admin", "10.0.2.1") is None  # an address with no failures is still checked


def test_ipv6_clients_are_throttled_by_their_64(throttle: LoginThrottle) -> None:
    for number in range(LOGIN_FREE_FAILURES + 1):
        throttle.failed(f"user{number}", f"2001:db8:1:2::{number + 1}")
    assert throttle.check("someone", "2001:db8:1:2:ffff::1") is not None
    assert throttle.check("someone", "2001:db8:1:3::1") is None
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("fe80::1%eth0") == "fe80::/64"


def test_memory_stays_bounded_under_a_spray(clock: Clock) -> None:
    throttle = LoginThrottle(clock=clock, max_keys=100)
    for number in range(5000):
        throttle.failed(f"name{number}", f"10.{number // 65536}.{number // 256 % 256}.{number % 256}")
    assert throttle.tracked() == (100, 100)


def test_each_failure_and_each_decision_is_logged_without_the_password(throttle: LoginThrottle,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shim.throttle")
    fail(throttle, LOGIN_FREE_FAILURES + 1, account="alice", address="192.0.2.7")
    throttle.check("alice", "192.0.2.7")
    lines = [r.getMessage() for r in caplog.records if r.name == "shim.throttle"]
    failures = [line for line in lines if line.startswith("failed login of 'alice' from 192.0.2.7")]
    assert len(failures) == LOGIN_FREE_FAILURES + 1
    assert "address 192.0.2.7 locked for 1 s after 6 failed logins" in lines
    assert "account alice locked for 1 s after 6 failed logins" in lines
    assert lines[-1] == "login of 'alice' from 192.0.2.7 refused for 1 s: too many failed logins for this address"
