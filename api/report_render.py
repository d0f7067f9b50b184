"""The monthly report as printable bilingual HTML (Jinja2, api/templates/) and PDF (WeasyPrint).

The page is self-contained: styles inline, charts as data URIs, fonts from the system (Debian's
fonts-noto-cjk). WeasyPrint's URL fetcher allows data URIs only, so a report never reaches out of
the box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from ferrogate.api.report_charts import charts
from ferrogate.gateway.compliance.report import fmt
from ferrogate.gateway.cost.config import TouPeriod

TEMPLATES = Path(__file__).parent / "templates"
STATUS_TEXT = {
    "grade_1": "1级 grade 1",
    "grade_2": "2级 grade 2",
    "grade_3": "3级 grade 3",
    "not_compliant": "超限额 not compliant",
    "no_production": "无产量 no production",
    "missing_input": "缺少修正输入 missing input",
    "no_limit_standard": "无国家限额标准 no limit standard",
    "not_mapped": "未指定标准 not mapped",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_env.filters["num"] = fmt


def status_text(status: str | None) -> str:
    return STATUS_TEXT.get(status or "", status or "—")


def grade_text(indicator: dict[str, Any]) -> str:
    return status_text(indicator["status"])


def level(indicator: dict[str, Any], grade: str) -> float | None:
    return (indicator["levels"] or {}).get(grade)


# the cost section's columns and the origin of a surcharge's position (docs/cost.md)
PERIOD_NAMES = {
    "sharp": "尖峰 sharp",
    "peak": "峰 peak",
    "flat": "平 flat",
    "valley": "谷 valley",
    "deep_valley": "深谷 deep valley",
}
ORIGIN_NAMES = {
    "energy_books": "能耗账 energy books",
    "compliance": "限额等级 compliance",
    "plant_file": "配置 plant file",
}


def cost_periods(report: dict[str, Any]) -> list[str]:
    """The time-of-use periods with energy in the month (columns of the cost table), in tariff order."""
    cost = report.get("cost")
    if not cost:
        return []
    used = {k for e in [*cost["products"], cost["plant"]] for k in e["kwh_by_period"]}
    return [p.value for p in TouPeriod if p.value in used]


_env.globals |= {
    "status_text": status_text,
    "grade_text": grade_text,
    "level": level,
    "period_names": PERIOD_NAMES,
    "origin_names": ORIGIN_NAMES,
}


def render_html(report: dict[str, Any]) -> str:
    return _env.get_template("monthly_report.html").render(
        r=report, charts=charts(report), periods=cost_periods(report)
    )


def render_pdf(html: str) -> bytes:
    # data URIs only; anything else stops the rendering instead of reaching out of the box
    fetcher = URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    pdf = HTML(string=html, base_url=str(TEMPLATES), url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return pdf
