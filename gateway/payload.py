"""MQTT topic tree and the versioned JSON payload of a device scan (schema `ferrogate/1`).

Topic:   {root}/{site}/telemetry/{device}
Payload: {"schema": "ferrogate/1", "site", "device", "seq", "gateway_time_ns",
          "readings": [{"point", "asset", "v", "u", "q", "t", "r"?}]}
`t` and `gateway_time_ns` are Unix nanoseconds (integers, exact); `v` is a number, or null exactly
when q == "bad" (a number beside "bad" from another publisher is dropped on decoding); `r` is the
quality reason, present when q is not "good".
"""

from __future__ import annotations

import json
import math
from typing import Any

from ferrogate.gateway.reading import Quality, Reading, ScanBatch

SCHEMA = "ferrogate/1"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_QUALITIES = {q.value: q for q in Quality}
_TOPIC_LEVEL = str.maketrans({"/": "_", "+": "_", "#": "_"})


class PayloadError(ValueError):
    """A telemetry message that does not follow the schema; the text says why."""


def telemetry_topic(root: str, site: str, device: str) -> str:
    return f"{root}/{site}/telemetry/{device}"


def telemetry_filter(root: str, site: str = "+") -> str:
    return f"{root}/{site}/telemetry/+"


def status_topic(root: str, site: str, device: str | None = None) -> str:
    """Retained online/offline status of a device, or of the gateway itself when device is None."""
    return f"{root}/{site}/status/{device}" if device else f"{root}/{site}/status"


def device_status_filter(root: str, site: str = "+") -> str:
    return f"{root}/{site}/status/+"


def ingest_probe_topic(root: str, site: str) -> str:
    """Only ingest workers subscribe here (shared): a publisher learns from the PUBACK reason code
    whether any is subscribed before it forwards its spool."""
    return f"{root}/{site}/ingest/probe"


def ingest_ack_topic(root: str, site: str, stream: str) -> str:
    """Retained: how far ingest has made a collector's spool stream durable (`encode_ingest_ack`)."""
    return f"{root}/{site}/ingest/ack/{stream}"


def ingest_ack_filter(root: str, site: str) -> str:
    return f"{root}/{site}/ingest/ack/+"


def stream_name(gateway_id: str) -> str:
    """A collector's gateway id as one topic level (no '/', '+', '#')."""
    return gateway_id.translate(_TOPIC_LEVEL) or "_"


def encode_ingest_ack(epoch: str, mark: int, waiting: int = 0) -> bytes:
    """{"schema", "epoch": the collector spool's epoch, "mark": every entry id <= mark is durable,
    "waiting": durable entries ingest holds beyond a hole after the mark}."""
    doc = {"schema": SCHEMA, "epoch": epoch, "mark": mark, "waiting": waiting}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_ingest_ack(payload: bytes) -> tuple[str, int, int]:
    """(epoch, mark, waiting) of an ingest acknowledgement; raises PayloadError with the reason."""
    doc = _json(payload)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise PayloadError(f"not a {SCHEMA} ingest acknowledgement")
    epoch, mark, waiting = doc.get("epoch"), doc.get("mark"), doc.get("waiting", 0)
    if not isinstance(epoch, str) or not _is_int(mark) or mark < 0 or not _is_int(waiting) or waiting < 0:
        raise PayloadError("epoch must be a string, mark and waiting non-negative integers")
    return epoch, mark, waiting


def encode_device_status(site: str, device: str, online: bool, time_ns: int) -> bytes:
    """A device's status change: {"schema", "site", "device", "status": "online"|"offline", "t"}."""
    doc = {"schema": SCHEMA, "site": site, "device": device, "status": "online" if online else "offline", "t": time_ns}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_device_status(payload: bytes) -> tuple[str, str, bool, int]:
    """(site, device, online, time_ns) of a device status message; raises PayloadError with the reason."""
    doc = _json(payload)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise PayloadError(f"not a {SCHEMA} status object")
    site, device, status, t = doc.get("site"), doc.get("device"), doc.get("status"), doc.get("t")
    if not (isinstance(site, str) and isinstance(device, str)):
        raise PayloadError("site/device must be strings")
    if status not in ("online", "offline"):
        raise PayloadError("status must be 'online' or 'offline'")
    if not _is_int(t):
        raise PayloadError("t must be integer nanoseconds")
    return site, device, status == "online", t


def encode_batch(batch: ScanBatch) -> bytes:
    readings = []
    assets = batch.assets
    for r in batch.readings:
        item: dict[str, Any] = {
            "point": r.point,
            "v": r.value if r.quality is not Quality.BAD else None,  # a bad reading carries no value
            "u": r.unit,
            "q": r.quality.value,
            "t": r.source_time_ns,
        }
        asset = assets.get(r.point)
        if asset is not None:
            item["asset"] = asset
        if r.reason is not None:
            item["r"] = r.reason
        readings.append(item)
    doc = {
        "schema": SCHEMA,
        "site": batch.site,
        "device": batch.device,
        "seq": batch.seq,
        "gateway_time_ns": batch.gateway_time_ns,
        "readings": readings,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def check_size(payload: bytes, max_bytes: int) -> None:
    """Refuse a message before parsing it when it is larger than any scan batch should be."""
    if len(payload) > max_bytes:
        raise PayloadError(f"message of {len(payload)} bytes is larger than mqtt.max_message_bytes ({max_bytes})")


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except RecursionError as exc:
        raise PayloadError("not JSON: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise PayloadError(f"not JSON: {exc}") from exc


def decode_batch(payload: bytes) -> ScanBatch:
    """Parse and check a telemetry message; raises PayloadError with the reason."""
    doc = _json(payload)
    if not isinstance(doc, dict):
        raise PayloadError("payload is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise PayloadError(f"unknown schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    try:
        site, device, seq, gw = doc["site"], doc["device"], doc["seq"], doc["gateway_time_ns"]
        items = doc["readings"]
    except KeyError as exc:
        raise PayloadError(f"missing field {exc.args[0]!r}") from exc
    if not (isinstance(site, str) and isinstance(device, str) and _is_int(seq) and _is_int(gw)):
        raise PayloadError("site/device must be strings, seq/gateway_time_ns integers")
    if not isinstance(items, list):
        raise PayloadError("'readings' is not a list")
    batch = ScanBatch(site=site, device=device, seq=seq, gateway_time_ns=gw)
    for i, item in enumerate(items):
        batch.readings.append(_decode_reading(item, i, batch.assets))
    return batch


def _is_int(x: object) -> bool:
    """An integer InfluxDB and the clocks can hold (int64): times in ns, sequence numbers."""
    return isinstance(x, int) and not isinstance(x, bool) and INT64_MIN <= x <= INT64_MAX


def _decode_reading(item: object, i: int, assets: dict[str, str]) -> Reading:
    if not isinstance(item, dict):
        raise PayloadError(f"readings[{i}] is not an object")
    point, value, unit, q, t = item.get("point"), item.get("v"), item.get("u"), item.get("q"), item.get("t")
    if not isinstance(point, str) or not point:
        raise PayloadError(f"readings[{i}].point missing")
    if not isinstance(unit, str):
        raise PayloadError(f"readings[{i}].u missing")
    quality = _QUALITIES.get(q) if isinstance(q, str) else None
    if quality is None:
        raise PayloadError(f"readings[{i}].q must be one of {sorted(_QUALITIES)}")
    if not _is_int(t):
        raise PayloadError(f"readings[{i}].t must be integer nanoseconds")
    if value is None:
        if quality is not Quality.BAD:
            raise PayloadError(f"readings[{i}].v is null but quality is {quality.value}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PayloadError(f"readings[{i}].v must be a finite number or null")
    elif quality is Quality.BAD:
        value = None  # a publisher that sent a bad reading's number: the reading is kept, the number is not
    reason = item.get("r")
    if reason is not None and not isinstance(reason, str):
        raise PayloadError(f"readings[{i}].r must be a string")
    asset = item.get("asset")
    if isinstance(asset, str):
        assets[point] = asset
    return Reading(point, None if value is None else float(value), unit, t, quality, reason)
