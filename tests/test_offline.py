"""Offline-first (issue 17): what a plant user opens works on a network without internet.

The API's pages render in a real headless Chromium with every request off the box blocked, and
nothing the product serves or ships (pages, their scripts and styles, the OpenAPI schema, Grafana
dashboards and provisioning, report templates) loads anything from elsewhere."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml

from ferrogate.api.app import create_app
from ferrogate.api.context import ApiContext
from ferrogate.api.keys import KeyStore
from ferrogate.gateway.api_server import EmbeddedServer
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.live import LiveCache
from tests.conftest import ROOT
from tests.offline_browser import assert_renders_offline
from tests.offline_urls import external_loads, external_urls, html_loads, is_local
from tests.waiting import eventually

PLANT = Path(__file__).parent / "testcases" / "config" / "valid_minimal" / "plant.yaml"
# 127.0.0.2, not 127.0.0.1: a box is reached by an address Swagger UI does not treat as "localhost"
HOST = "127.0.0.2"
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".ferrogate-demo"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def api() -> AsyncIterator[str]:
    """The API (uvicorn) on a loopback address, on a socket bound here so no port race is possible."""
    context = ApiContext(load_plant(PLANT), LiveCache(), KeyStore([]))
    sock = socket.socket()
    sock.bind((HOST, 0))
    server = EmbeddedServer(uvicorn.Config(create_app(context), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: asyncio.sleep(0, server.started), "the API server to start", within_s=30)
    yield f"http://{HOST}:{sock.getsockname()[1]}"
    server.should_exit = True
    await task
    sock.close()


# Each page a plant user opens: (path, text that shows it rendered, element that must show it).
# The monthly HTML report joins with one line in a test against the accounted demo, e.g.
#   await assert_renders_offline(f"{api}/api/v1/reports/monthly?month={month}&format=html", "kWh/t",
#                                headers={"X-API-Key": demo.api_key})
PAGES = [
    ("/docs", "/api/v1/assets", ".opblock .opblock-summary-path"),  # Swagger UI's operations list
    ("/redoc", "/api/v1/assets", "body"),
]


@pytest.mark.parametrize(("path", "expect_text", "within"), PAGES, ids=[p[0] for p in PAGES])
async def test_api_pages_render_in_chromium_without_internet(
    api: str, path: str, expect_text: str, within: str
) -> None:
    visit = await assert_renders_offline(f"{api}{path}", expect_text, within=within)
    icons = [u for u in visit.requested if "favicon" in u]
    assert icons and all(u.startswith(api) for u in icons), f"favicon not served by the box: {visit.requested}"
    assert f"{api}/openapi.json" in visit.requested


async def test_served_pages_and_their_assets_load_nothing_from_elsewhere(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        for path, _, _ in PAGES:
            page = await http.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
            assert not external_loads(page.text, "html"), f"{path}: {external_loads(page.text, 'html')}"
            loads = html_loads(page.text)
            assert any(u.endswith(".js") for u in loads), f"{path}: no script found: the scan saw nothing"
            for asset in loads:
                served = await http.get(urljoin(f"{api}{path}", asset))
                assert served.status_code == 200, f"{path}: {asset}: HTTP {served.status_code}"
                kind = "css" if asset.endswith(".css") else "js" if asset.endswith(".js") else None
                if kind:
                    found = external_loads(served.text, kind)
                    assert not found, f"{path}: {asset} loads {found}"


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_openapi_schema_makes_the_viewers_fetch_nothing_from_elsewhere(api: str) -> None:
    """openapi.json is data: a URL in a description is text that Swagger UI and ReDoc show as a link
    (fine offline). What the viewers fetch by themselves must be local: every `$ref`, ReDoc's
    `info.x-logo`, and the `servers` Swagger UI sends "Try it out" requests to."""
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        schema = (await http.get("/openapi.json")).json()
    references = refs(schema)
    assert references and all(r.startswith("#/") for r in references), [r for r in references if r[:2] != "#/"]
    logo = schema["info"].get("x-logo", {}).get("url")
    assert logo is None or is_local(logo), logo
    assert all(is_local(s["url"]) for s in schema.get("servers", [])), schema.get("servers")
    assert "/api/v1/heats" in schema["paths"]


def shipped(pattern: str) -> list[Path]:
    return sorted(p for p in ROOT.glob(pattern) if p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts))


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


def test_dashboards_and_grafana_provisioning_reference_no_url_off_the_box() -> None:
    """Grafana renders our dashboards in the plant's browsers: a panel link, image or text pointing
    at the internet would be a dead end there. Every value is scanned (comments are not read)."""
    files = shipped("deploy/grafana/**/*.json") + shipped("deploy/grafana/**/*.y*ml")
    assert len([f for f in files if f.suffix == ".json"]) >= 3 and files
    found = {}
    for f in files:
        text = f.read_text(encoding="utf-8")
        document = json.loads(text) if f.suffix == ".json" else yaml.safe_load(text)
        found[str(f.relative_to(ROOT))] = [u for s in strings(document) for u in external_urls(s)]
    assert not any(found.values()), {k: v for k, v in found.items() if v}


# What Grafana itself reaches out for by default (its defaults.ini): usage reports, update checks,
# the news feed, Gravatar pictures in the browser, the external snapshot button.
GRAFANA_CALLS_OUT_OFF = {
    "GF_ANALYTICS_REPORTING_ENABLED": "false",
    "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
    "GF_NEWS_NEWS_FEED_ENABLED": "false",
    "GF_SECURITY_DISABLE_GRAVATAR": "true",
    "GF_SNAPSHOTS_EXTERNAL_ENABLED": "false",
}


def test_grafana_as_shipped_calls_nothing_off_the_box() -> None:
    """Both ways Grafana is shipped (Debian unit drop-in, compose) read the same settings file."""
    offline = ROOT / "deploy" / "grafana" / "offline.env"
    settings = dict(
        line.split("=", 1) for line in offline.read_text().splitlines() if line and not line.startswith("#")
    )
    assert settings == GRAFANA_CALLS_OUT_OFF
    drop_in = (ROOT / "deploy" / "systemd" / "grafana-server.service.d" / "ferrogate.conf").read_text()
    installed = "/opt/ferrogate/deploy/grafana/offline.env"  # install.sh copies deploy/grafana to /opt/ferrogate/deploy
    assert f"\nEnvironmentFile={installed}\n" in drop_in
    assert 'cp -r "$SRC/deploy/grafana"' in (ROOT / "deploy" / "install.sh").read_text()
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert "./grafana/offline.env" in compose["services"]["grafana"]["env_file"]


TEMPLATE_KINDS = {".html": "html", ".htm": "html", ".jinja": "html", ".j2": "html", ".css": "css", ".js": "js"}


def test_report_templates_load_nothing_from_elsewhere() -> None:
    """Report templates (HTML/PDF) in any `templates` directory: fonts, styles, scripts and images
    come with the product. Until the first report template lands this scans no file."""
    templates = [p for p in shipped("**/templates/**/*") if p.suffix in TEMPLATE_KINDS]
    found = {
        str(p.relative_to(ROOT)): external_loads(p.read_text(encoding="utf-8"), TEMPLATE_KINDS[p.suffix])
        for p in templates
    }
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_the_scanners_find_what_a_browser_would_fetch() -> None:
    page = """<html><head><link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui.css">
    <link rel="icon" href="/docs/favicon.png"><script src="/docs/bundle.js"></script>
    <style>body { font: url('https://fonts.gstatic.com/x.woff2') }</style></head>
    <body><a href="https://www.mee.gov.cn/guideline">source</a><img srcset="/a.png 1x, http://10.0.0.9/b.png 2x">
    <script>fetch("https://api.example.com/x")</script></body></html>"""
    assert external_loads(page, "html") == [
        "https://cdn.jsdelivr.net/npm/swagger-ui.css",
        "http://10.0.0.9/b.png",
        "https://fonts.gstatic.com/x.woff2",
        "https://api.example.com/x",
    ]
    fastapi_offline_redoc = 'r.createElement("img",{alt:"redocly logo",src:"https://cdn.redoc.ly/redoc/logo-mini.svg"})'
    assert external_loads(fastapi_offline_redoc, "js") == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]
    assert external_loads('@import url("https://fonts.googleapis.com/css?family=Roboto");', "css")
    assert external_loads('href:"https://redocly.com/redoc/"', "js") == []  # a link, not a load
    dashboard = json.dumps({"links": [{"url": "https://grafana.com/docs"}], "url": "http://127.0.0.1:8086"})
    assert external_urls(dashboard) == ["https://grafana.com/docs"]
    assert is_local("http://[::1]:8080/x") and is_local("/docs") and is_local("data:image/png;base64,AA")
    assert not is_local("http://influxdb:8086") and not is_local("https://192.168.1.5/")
