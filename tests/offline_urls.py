"""What a page, a script, a stylesheet or a dashboard would fetch from elsewhere: the scanners behind
tests/test_offline.py. An edge box sits on a plant network without internet, so everything the
product serves or ships must load from the box itself (loopback or relative URLs).

A *load* is a reference the browser (or Grafana) follows by itself: `src`, `srcset`, `<link href>`,
CSS `url()` and `@import`, a script's `fetch()`/`Worker`/`EventSource`/`WebSocket`. A link a person
clicks (`<a href>`) loads nothing until clicked, so it is not one: a report may cite its sources."""

from __future__ import annotations

import ipaddress
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

# In scripts and stylesheets (minified bundles included): the URL of each load written as a literal.
_QUOTE = "[\"'`]"
_SCRIPT_AND_STYLE_LOADS = re.compile(
    rf"\b(?:src|srcset)\s*[:=]\s*{_QUOTE}(?P<a>[a-z][a-z0-9+.-]*://[^\"'`\s]+)"
    rf"|url\(\s*{_QUOTE}?(?P<b>[a-z][a-z0-9+.-]*://[^\"'`\s)]+)"
    rf"|@import\s+(?:url\()?\s*{_QUOTE}?(?P<c>[a-z][a-z0-9+.-]*://[^\"'`\s);]+)"
    rf"|\b(?:fetch|Worker|EventSource|WebSocket)\(\s*{_QUOTE}(?P<d>[a-z][a-z0-9+.-]*://[^\"'`\s]+)",
    re.IGNORECASE,
)
# Anywhere at all (dashboards): every absolute web URL.
_ANY_URL = re.compile(r"\b(?:https?|wss?)://[^\s\"'`<>)]+", re.IGNORECASE)


def is_local(url: str) -> bool:
    """Relative, or absolute to a loopback host; `data:`, `blob:` and `about:` stay in the page."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript"):
        return True
    if not parts.scheme and not parts.netloc:
        return True  # relative: the server the page came from
    host = (parts.hostname or "").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: resolved by someone else's DNS, off the box


class _HtmlLoads(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.inline: list[str] = []  # <script> and <style> bodies, scanned like files
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("src", "poster", "data"):
            if values.get(name):
                self.urls.append(values[name])
        if values.get("srcset"):
            self.urls += [item.split()[0] for item in values["srcset"].split(",") if item.strip()]
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"])  # stylesheets, icons, preloads, fonts
        if values.get("style"):
            self.inline.append(values["style"])
        self._in_code = tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.inline.append(data)


def code_loads(text: str) -> list[str]:
    """URLs a script or stylesheet loads, as far as they are written as literals."""
    return [next(g for g in m.groups() if g) for m in _SCRIPT_AND_STYLE_LOADS.finditer(text)]


def html_loads(text: str) -> list[str]:
    """URLs an HTML page (or an HTML template) loads: its tags' loads and those of its inline code."""
    parser = _HtmlLoads()
    parser.feed(text)
    parser.close()
    return parser.urls + [url for code in parser.inline for url in code_loads(code)]


def external_loads(text: str, kind: str) -> list[str]:
    """The off-box URLs a file of this kind (`html`, `js`, `css`) loads."""
    urls = html_loads(text) if kind == "html" else code_loads(text)
    return [u for u in urls if not is_local(u)]


def external_urls(text: str) -> list[str]:
    """Every off-box web URL written anywhere in the text (for files a server fetches from, like dashboards)."""
    return [u for u in _ANY_URL.findall(text) if not is_local(u)]
