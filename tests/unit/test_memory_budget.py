"""The memory budget that syncs running in one process share (pure logic, threads only)."""

from __future__ import annotations

import threading
import time

from engine.sync import MemoryBudget


def _acquire_in_thread(budget: MemoryBudget, n: int, stop: threading.Event, got: list[tuple[int, bool]]) -> threading.Thread:
    thread = threading.Thread(target=lambda: got.append((n, budget.acquire(n, stop))), daemon=True)
    thread.start()
    return thread


def _wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_requests_within_the_limit_are_granted_and_released() -> None:
    budget = MemoryBudget(100)
    stop = threading.Event()
    assert budget.acquire(60, stop)
    assert budget.acquire(40, stop)
    assert budget.used == 100
    budget.release(60)
    budget.release(40)
    assert budget.used == 0


def test_a_request_larger_than_the_budget_waits_until_nothing_is_held() -> None:
    budget = MemoryBudget(100)
    stop = threading.Event()
    assert budget.acquire(30, stop)
    got: list[tuple[int, bool]] = []
    giant = _acquire_in_thread(budget, 500, stop, got)
    time.sleep(0.1)
    assert got == []  # 30 bytes are still held
    budget.release(30)
    giant.join(5)
    assert got == [(500, True)]
    assert budget.used == 500


def test_a_waiting_large_request_is_not_overtaken_by_smaller_ones() -> None:
    """Arrival order: while a big request waits for bytes to drain, a later small one that
    would fit waits behind it, so a stream of small chunks cannot starve a large message."""
    budget = MemoryBudget(100)
    stop = threading.Event()
    assert budget.acquire(50, stop)
    got: list[tuple[int, bool]] = []
    big = _acquire_in_thread(budget, 90, stop, got)
    _wait_until(lambda: len(budget._waiting) == 1)
    small = _acquire_in_thread(budget, 10, stop, got)
    time.sleep(0.1)
    assert got == []  # 10 would fit next to the 50 held, but the 90 asked first
    budget.release(50)
    big.join(5)
    small.join(5)
    assert got == [(90, True), (10, True)]
    assert budget.used == 100


def test_a_stopped_wait_acquires_nothing_and_frees_its_place() -> None:
    budget = MemoryBudget(100)
    held = threading.Event()
    assert budget.acquire(100, held)
    stop = threading.Event()
    got: list[tuple[int, bool]] = []
    waiting = _acquire_in_thread(budget, 10, stop, got)
    _wait_until(lambda: len(budget._waiting) == 1)
    stop.set()
    waiting.join(5)
    assert got == [(10, False)]
    assert budget.used == 100 and not budget._waiting
    budget.release(100)
    assert budget.acquire(100, held)  # nobody left in the queue ahead
