"""The lease queue's wake-up signal (the long-polling lease): a raise from any thread wakes
the waiters of an event loop; a wait that starts after a raise it has not seen returns at
once; a wait with nothing raised ends at its timeout."""

from __future__ import annotations

import threading
import time

from mailshot.queue import QueueSignal
from tests.support import aio


def test_a_raise_from_another_thread_wakes_the_waiter() -> None:
    signal = QueueSignal()

    async def scenario() -> tuple[bool, float]:
        generation = signal.generation
        threading.Timer(0.2, signal.raise_).start()
        started = time.monotonic()
        woken = await signal.wait(generation, 5)
        return woken, time.monotonic() - started

    woken, took = aio.run(scenario())
    assert woken and 0.15 < took < 2


def test_a_raise_before_the_wait_is_not_missed() -> None:
    signal = QueueSignal()
    generation = signal.generation
    signal.raise_()  # between reading the generation and waiting: work was queued
    started = time.monotonic()
    assert aio.run(signal.wait(generation, 5)) is True
    assert time.monotonic() - started < 0.5


def test_a_wait_with_nothing_raised_times_out() -> None:
    signal = QueueSignal()
    started = time.monotonic()
    assert aio.run(signal.wait(signal.generation, 0.2)) is False
    assert time.monotonic() - started >= 0.2
