"""Charts of the monthly report (matplotlib, Agg, object API only: no pyplot state, safe in a worker
thread): daily intensity of each graded product against its grade levels, energy by carrier, CO2
by source. Each chart is a PNG in a data URI, so the report needs nothing from outside itself."""

from __future__ import annotations

import base64
import io
from typing import Any

from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Debian's fonts-noto-cjk (scripts/setup.sh) carries the Chinese labels; DejaVu is matplotlib's own
rcParams["font.family"] = ["Noto Sans CJK SC", "DejaVu Sans"]
rcParams["axes.unicode_minus"] = False
GRADE_COLOURS = {"grade_1": "#2e7d32", "grade_2": "#f9a825", "grade_3": "#c62828"}


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def daily_intensity(product: dict[str, Any]) -> str | None:
    """Daily kWh/t (or kgce/t where the standard grades only comprehensive energy) against the
    month's grade levels."""
    limit = product.get("limit") or {}
    indicators = limit.get("indicators") or []
    if not indicators or not product["daily"]:
        return None
    indicator = indicators[0]  # smelting electricity where graded, else comprehensive energy
    field = "kwh_per_t" if indicator["unit"] == "kWh/t" else "kgce_per_t"
    days = [d for d in product["daily"] if d.get(field) is not None]
    if not days:
        return None
    fig = Figure(figsize=(7.0, 2.6))
    ax = fig.add_subplot()
    ax.plot(
        [d["label"][8:10] for d in days],
        [d[field] for d in days],
        marker="o",
        color="#1565c0",
        label=product["product"],
    )
    for grade, level in (indicator["levels"] or {}).items():
        if level is not None:
            ax.axhline(
                level,
                color=GRADE_COLOURS[grade],
                linestyle="--",
                linewidth=1,
                label=f"{grade.replace('_', ' ')}: {level:,.0f}",
            )
    ax.set_title(
        f"{product['product']} 日{indicator['name'].split()[0]} daily {indicator['unit']} ({limit['standard']})",
        fontsize=9,
    )
    ax.set_xlabel("日 day", fontsize=8)
    ax.set_ylabel(indicator["unit"], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def _stacked(names: list[str], series: dict[str, list[float]], title: str, unit: str) -> str:
    """Bars per product, stacked by series, negative parts below zero."""
    fig = Figure(figsize=(7.0, 2.8))
    ax = fig.add_subplot()
    positive = [0.0] * len(names)
    negative = [0.0] * len(names)
    for label, values in series.items():
        bottoms = [negative[i] if v < 0 else positive[i] for i, v in enumerate(values)]
        ax.bar(names, values, bottom=bottoms, label=label)
        for i, v in enumerate(values):
            if v < 0:
                negative[i] += v
            else:
                positive[i] += v
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def energy_by_carrier(products: list[dict[str, Any]]) -> str | None:
    """Comprehensive energy by carrier per product, tce (waste-heat power sent back below zero)."""
    rows = [p for p in products if p.get("comprehensive_kgce")]
    if not rows:
        return None
    series: dict[str, list[float]] = {}
    for n, p in enumerate(rows):
        for carrier, kgce in p["carrier_kgce"].items():
            series.setdefault(carrier, [0.0] * len(rows))[n] = kgce / 1000.0
    names = [p["product"] for p in rows]
    return _stacked(names, series, "分能源品种综合能耗 comprehensive energy by carrier (tce)", "tce")


CO2_SOURCES = (
    ("tco2_combustion", "燃烧 combustion", 1.0),
    ("tco2_process", "过程 process", 1.0),
    ("tco2_fixed_in_product", "产品固碳 fixed in product", -1.0),
    ("tco2_indirect", "外购电力 purchased electricity", 1.0),
)


def co2_by_source(products: list[dict[str, Any]]) -> str | None:
    """The books' CO2 per product by source (carbon fixed in the product below zero)."""
    rows = [p for p in products if p.get("tco2_total")]
    if not rows:
        return None
    series = {label: [sign * (p.get(field) or 0.0) for p in rows] for field, label, sign in CO2_SOURCES}
    return _stacked([p["product"] for p in rows], series, "分来源二氧化碳排放 CO2 by source (t)", "tCO2")


def charts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "daily": {p["product"]: c for p in report["products"] if (c := daily_intensity(p)) is not None},
        "carriers": energy_by_carrier(report["products"]),
        "co2": co2_by_source(report["products"]),
    }
