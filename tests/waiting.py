"""Waiting for a condition in integration tests: poll until it holds, fail with what was awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
