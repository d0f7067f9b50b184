"""Keeping a `Task.cancel()` a cancellation on Python 3.11.

There, `asyncio.wait_for` (which aiomqtt, pymodbus and asyncua await for every answer) returns
normally when the awaited result arrives in the same loop turn as the cancellation, and the
CancelledError is lost (fixed in 3.12). A loop that goes on after such a call would then run on
after being cancelled, and whoever awaits the task would wait forever. Call `cancel_pending()`
after those calls and raise CancelledError when it says so."""

from __future__ import annotations

import asyncio


def cancel_pending() -> bool:
    """True when the current task has been asked to stop and has not yet handled it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelled() -> None:
    if cancel_pending():
        raise asyncio.CancelledError
