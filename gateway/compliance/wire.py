"""How the limit grades leave the compliance layer: the `compliance_grade` rows (InfluxDB line
protocol, docs/compliance.md section 8) and one MQTT message per product and month (schema
`ferrogate-compliance/1`, in the books' wire style: `schema, site, type, period`), and the reverse:
a group center turns each message back into exactly the rows the plant wrote, so the center's limit
status of a plant is the plant's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.energy.wire import dumps, line, period_doc
from ferrogate.gateway.energy.wire_lines import DerivedPayloadError, payload_doc, payload_period, payload_text

SCHEMA = "ferrogate-compliance/1"
GRADE = "compliance_grade"
WINDOWS = ("month", "rolling_12_months")
# what a grade row keeps of each graded indicator (assess's answer; `levels` is flattened in the row)
INDICATOR_KEYS = (
    "indicator",
    "status",
    "value",
    "unit",
    "grade",
    "levels",
    "margin_to_next_grade",
    "tonnes_t",
    "verified",
)
LEVELS = ("grade_1", "grade_2", "grade_3")


def grade_lines(site: str, label: str, start_ns: int, products: Sequence[Mapping[str, Any]]) -> list[str]:
    """`compliance_grade` rows (time = month start): one per product, indicator and window. A
    product without a limit standard has no windows and no rows."""
    lines = []
    for p in products:
        for window in WINDOWS:
            for i in p.get(window, {}).get("indicators", []):
                levels = i["levels"] or {}
                fields = {
                    "label": label,
                    "standard": p["standard"],
                    "status": i["status"],
                    "value": i["value"],
                    "unit": i["unit"],
                    "grade": float(i["grade"]) if i["grade"] is not None else None,
                    **{level: levels.get(level) for level in LEVELS},
                    "margin_to_next_grade": i["margin_to_next_grade"],
                    "tonnes_t": i["tonnes_t"],
                    "verified": i["verified"],
                }
                tags = {"site": site, "product": p["product"], "indicator": i["indicator"], "window": window}
                lines.append(line(GRADE, tags, fields, start_ns))
    return lines


# --- MQTT ------------------------------------------------------------------------------------------


def grade_topic(root: str, site: str, product: str) -> str:
    """Under the plant's `energy/` tree, so a group bridge that carries the books carries these."""
    return f"{root}/{site}/energy/compliance/grade/{product}"


def graded(products: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The products a limit standard grades (the others have no rows and no message)."""
    return [p for p in products if all(w in p for w in WINDOWS)]


def grade_payload(site: str, period: Period, product: Mapping[str, Any]) -> bytes:
    """A graded product's month: what its grade rows hold, nothing more."""
    windows = {
        w: {"indicators": [{k: i[k] for k in INDICATOR_KEYS} for i in product[w]["indicators"]]} for w in WINDOWS
    }
    doc = {
        "schema": SCHEMA,
        "site": site,
        "type": "grade",
        "product": product["product"],
        "standard": product["standard"],
        "period": period_doc(period),
        **windows,
    }
    return dumps(doc)


def _indicators(doc: dict[str, Any], window: str) -> list[dict[str, Any]]:
    body = doc.get(window)
    items = body.get("indicators") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DerivedPayloadError(f"{window}.indicators must be a list of objects")
    for i in items:
        missing = [k for k in INDICATOR_KEYS if k not in i]
        if missing:
            raise DerivedPayloadError(f"{window}.indicators[] lacks {missing}")
        payload_text(i, "indicator")
        if i["levels"] is not None and not isinstance(i["levels"], dict):
            raise DerivedPayloadError(f"{window}.indicators[].levels must be an object or null")
        if i["grade"] is not None and (not isinstance(i["grade"], int) or isinstance(i["grade"], bool)):
            raise DerivedPayloadError(f"{window}.indicators[].grade must be an integer or null")
    return items


def grade_payload_lines(payload: bytes) -> tuple[str, list[str]]:
    """(site, the plant's `compliance_grade` lines) of one grade message; DerivedPayloadError if
    it does not follow `ferrogate-compliance/1`."""
    doc = payload_doc(payload, SCHEMA)
    if doc.get("type") != "grade":
        raise DerivedPayloadError("type must be 'grade'")
    site = payload_text(doc, "site")
    _, label, start_ns = payload_period(doc)
    product = {
        "product": payload_text(doc, "product"),
        "standard": payload_text(doc, "standard"),
        **{w: {"indicators": _indicators(doc, w)} for w in WINDOWS},
    }
    return site, grade_lines(site, label, start_ns, [product])
