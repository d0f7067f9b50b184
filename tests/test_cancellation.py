"""A cancellation swallowed by a library call (Python 3.11's wait_for) is raised again."""

from __future__ import annotations

import asyncio

from ferrogate.gateway.cancellation import cancel_pending, raise_if_cancelled


async def test_a_swallowed_cancellation_is_raised_again() -> None:
    loops = 0

    async def scan_loop() -> None:
        nonlocal loops
        while True:
            try:  # what wait_for does on 3.11 when the answer and the cancel meet in one loop turn
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass
            loops += 1
            raise_if_cancelled()

    task = asyncio.create_task(scan_loop())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and loops == 1


async def test_nothing_pending_outside_a_cancellation() -> None:
    assert cancel_pending() is False
    raise_if_cancelled()  # returns
