"""A plant's limit status at the group center, from the `compliance_grade` rows the plant sent up
(gateway/compliance/wire.py): per product, its standard and, for the month and the rolling 12
months, each indicator as the plant graded it, with the window's status and grade re-formed from
them exactly as the plant forms them (`limits.window_grade`). Nothing is re-graded here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ferrogate.gateway.compliance.limits import window_grade
from ferrogate.gateway.compliance.wire import LEVELS, WINDOWS
from ferrogate.gateway.positions import NOT_COMPLIANT


def indicator_out(row: dict[str, Any]) -> dict[str, Any]:
    grade = row.get("grade")
    return {
        "indicator": row["indicator"],
        "status": row.get("status"),
        "value": row.get("value"),
        "unit": row.get("unit"),
        "grade": None if grade is None else int(grade),  # stored as a float, graded as an integer
        # a graded indicator always has its limit (grade 3); none at all when it could not be graded
        "levels": None if row.get("grade_3") is None else {level: row.get(level) for level in LEVELS},
        "margin_to_next_grade": row.get("margin_to_next_grade"),
        "tonnes_t": row.get("tonnes_t"),
        "verified": row.get("verified"),
    }


def product_limits(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each product's limit status from one plant's grade rows of one month (tags and fields
    merged), products and indicators by name."""
    products: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["product"], r["window"], r["indicator"])):
        if row["window"] not in WINDOWS:
            continue
        p = products.setdefault(row["product"], {"product": row["product"], "standard": row.get("standard")})
        p.setdefault(row["window"], {"indicators": []})["indicators"].append(indicator_out(row))
    out = []
    for p in products.values():
        for window in WINDOWS:
            body = p.setdefault(window, {"indicators": []})
            body["status"], body["grade"] = window_grade(body["indicators"]) if body["indicators"] else (None, None)
        p["status"] = p["month"]["status"]
        out.append(p)
    return out


def not_compliant(product: dict[str, Any]) -> bool:
    """Above the limit in the month or over the rolling 12 months (what a plant's alarm raises on)."""
    return any(product[w]["status"] == NOT_COMPLIANT for w in WINDOWS)
