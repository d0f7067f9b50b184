"""A page as a plant user sees it on a network without internet: Debian's headless Chromium, driven
over the DevTools protocol by Playwright (its Python package only, never its browser download), with
every request to a host off the box blocked and recorded.

    await assert_renders_offline(f"{api}/docs", "/api/v1/assets", within=".opblock-summary-path")
    await assert_renders_offline(f"{api}/api/v1/reports/monthly?month=2026-11&format=html", "kWh/t",
                                 headers={"X-API-Key": key})
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Request, Response, Route, WebSocket, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.offline_urls import is_local

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by scripts/setup.sh --tests
# What works on these boxes (see the machine notes): no GPU, no sandbox as root, and none of
# Chromium's own background traffic (updates, sync, field trials).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = "localhost,127.0.0.0/8,[::1]"  # Chromium proxy-bypass rules
# Generous: the limit of a wait for a condition on a busy shared 2-core box, not a pause
RENDER_TIMEOUT_MS = 90_000

# A page shows text the same with or without these (Swagger UI breaks paths with zero-width spaces).
_SHOWS_TEXT = """([selector, text]) => [...document.querySelectorAll(selector)].some(
    e => e.innerText.replace(/[\\u200b\\u00ad]/g, '').includes(text))"""


@dataclass
class Visit:
    """What the page asked for while it rendered."""

    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # off the box: aborted before leaving
    failed: list[str] = field(default_factory=list)  # on the box, but no good answer

    def request(self, request: Request) -> None:
        self.requested.append(request.url)

    async def route(self, route: Route) -> None:
        if is_local(route.request.url):
            await route.continue_()
        else:
            self.blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    def websocket(self, ws: WebSocket) -> None:
        # a web socket is not routed like requests: recorded here, and off the box it meets the dead proxy
        self.requested.append(ws.url)
        if not is_local(ws.url):
            self.blocked.append(ws.url)

    def request_failed(self, request: Request) -> None:
        if is_local(request.url):
            self.failed.append(f"{request.url}: {request.failure}")

    def response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")


def chromium() -> Path:
    assert CHROMIUM.exists(), f"{CHROMIUM} missing: run scripts/setup.sh --tests (installs Debian's chromium)"
    return CHROMIUM


@contextmanager
def dead_proxy() -> Iterator[str]:
    """A loopback port that refuses connections: Chromium's proxy for everything not on loopback, so
    even a request the page-level block could not see (the browser's own) cannot leave the box."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def assert_renders_offline(
    url: str, expect_text: str, *, within: str = "body", headers: dict[str, str] | None = None
) -> Visit:
    """Open `url` in a fresh headless Chromium profile with every off-box request blocked; wait until an
    element matching `within` shows `expect_text` and the network is quiet; then assert that nothing was
    requested off the box and that everything the page asked of the box was answered."""
    visit = Visit()
    with tempfile.TemporaryDirectory(prefix="ferrogate-chromium-") as profile, dead_proxy() as proxy:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium(),
                headless=True,
                args=FLAGS,
                proxy={"server": proxy, "bypass": LOOPBACK},  # loopback direct, the rest nowhere
                extra_http_headers=headers,
                service_workers="block",
            )
            try:
                context.on("request", visit.request)
                context.on("requestfailed", visit.request_failed)
                context.on("response", visit.response)
                await context.route("**/*", visit.route)
                page = context.pages[0] if context.pages else await context.new_page()
                page.on("websocket", visit.websocket)
                response = await page.goto(url, timeout=RENDER_TIMEOUT_MS)
                assert response is not None and response.ok, f"{url}: {response.status if response else 'no answer'}"
                try:
                    await page.wait_for_function(_SHOWS_TEXT, arg=[within, expect_text], timeout=RENDER_TIMEOUT_MS)
                    await page.wait_for_load_state("networkidle", timeout=RENDER_TIMEOUT_MS)  # late loads: logos
                except PlaywrightTimeout:
                    raise AssertionError(
                        f"{url} did not show {expect_text!r} in {within!r}; blocked off the box: {visit.blocked}; "
                        f"failed on the box: {visit.failed}"
                    ) from None
            finally:
                await context.close()
    assert not visit.blocked, f"{url} asked for resources off the box: {visit.blocked}"
    assert not visit.failed, f"{url}: requests to the box failed: {visit.failed}"
    assert all(is_local(u) for u in visit.requested), visit.requested
    return visit
