"""The derived series' MQTT payloads (schema `ferrogate-energy/1`) back into the InfluxDB lines the
engine wrote from the same rows: a group center that receives a plant's books over MQTT stores
exactly the rows the plant stored, so the center's figures equal the plant's own.

Each function is the inverse of a `wire.*_payload` beside its `wire.*_line`; a payload that does
not follow the schema raises `DerivedPayloadError` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ferrogate.gateway.energy import wire
from ferrogate.gateway.timeutil import datetime_to_ns


class DerivedPayloadError(ValueError):
    """A derived-series message that does not follow `ferrogate-energy/1`; the text says why."""


def payload_ns(text: Any, what: str) -> int:
    if not isinstance(text, str):
        raise DerivedPayloadError(f"{what} must be an ISO 8601 time")
    try:
        return datetime_to_ns(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        raise DerivedPayloadError(f"{what}: {exc}") from exc


def _flags(doc: dict[str, Any]) -> str | None:
    flags = doc.get("flags") or []
    if not isinstance(flags, list):
        raise DerivedPayloadError("flags must be a list")
    return wire.flags_text(flags)


def payload_text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise DerivedPayloadError(f"{key} must be text")
    return value


def payload_period(doc: dict[str, Any]) -> tuple[str, str, int]:
    period = doc.get("period")
    if not isinstance(period, dict):
        raise DerivedPayloadError("period must be an object")
    return payload_text(period, "kind"), payload_text(period, "label"), payload_ns(period.get("start"), "period.start")


def kpi_lines(site: str, doc: dict[str, Any]) -> list[str]:
    kind, label, start_ns = payload_period(doc)
    fields = doc.get("fields")
    if not isinstance(fields, dict):
        raise DerivedPayloadError("fields must be an object")
    tags = {"site": site, "scope": payload_text(doc, "scope"), "subject": payload_text(doc, "subject"), "period": kind}
    values = {
        "label": label,
        "complete": doc.get("complete"),
        **fields,
        "quality": doc.get("quality"),
        "flags": _flags(doc),
        "provenance": json.dumps(doc.get("provenance") or {}, ensure_ascii=False, sort_keys=True),
    }
    return [wire.line(wire.KPI, tags, values, start_ns)]


_RECORD_HEAD = frozenset({"schema", "site", "type", "asset", "product", "kind", "end", "end_ns", "flags"})


def record_lines(site: str, doc: dict[str, Any]) -> list[str]:
    end_ns = doc.get("end_ns")
    if not isinstance(end_ns, int) or isinstance(end_ns, bool):
        end_ns = payload_ns(doc.get("end"), "end")  # a plant from before `end_ns`: milliseconds
    tags = {
        "site": site,
        "asset": payload_text(doc, "asset"),
        "product": payload_text(doc, "product"),
        "kind": payload_text(doc, "kind"),
    }
    values = {k: v for k, v in doc.items() if k not in _RECORD_HEAD}
    values["flags"] = _flags(doc)
    return [wire.line(wire.RECORD, tags, values, end_ns)]


def interval_lines(site: str, doc: dict[str, Any]) -> list[str]:
    rows = doc.get("intervals")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DerivedPayloadError("intervals must be a list of objects")
    asset = payload_text(doc, "asset")
    return [
        wire.line(
            wire.INTERVAL,
            {
                "site": site,
                "asset": asset,
                "role": payload_text(r, "role"),
                "source": r.get("source") or "",
                "unit": r.get("unit") or "",
            },
            {"value": r.get("value"), "quality": r.get("quality"), "flags": _flags(r)},
            payload_ns(r.get("start"), "intervals[].start"),
        )
        for r in rows
    ]


_BALANCE_HEAD = frozenset({"schema", "site", "type", "group", "period", "flags"})


def balance_lines(site: str, doc: dict[str, Any]) -> list[str]:
    kind, label, start_ns = payload_period(doc)
    tags = {"site": site, "group": payload_text(doc, "group"), "period": kind}
    values = {"label": label, **{k: v for k, v in doc.items() if k not in _BALANCE_HEAD}, "flags": _flags(doc)}
    return [wire.line(wire.BALANCE, tags, values, start_ns)]


_BY_TYPE: dict[str, Callable[[str, dict[str, Any]], list[str]]] = {
    "kpi": kpi_lines,
    "record": record_lines,
    "interval": interval_lines,
    "balance": balance_lines,
}


def payload_doc(payload: bytes, schema: str) -> dict[str, Any]:
    """The JSON object of a message of `schema` (the books', or another derived layer's)."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise DerivedPayloadError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise DerivedPayloadError(f"not a {schema} object")
    return doc


def derived_lines(payload: bytes) -> tuple[str, list[str]]:
    """(site, lines) of one derived-series message."""
    doc = payload_doc(payload, wire.SCHEMA)
    convert = _BY_TYPE.get(doc.get("type"))  # type: ignore[arg-type]
    if convert is None:
        raise DerivedPayloadError(f"type must be one of {sorted(_BY_TYPE)}")
    site = payload_text(doc, "site")
    return site, convert(site, doc)
