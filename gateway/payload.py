"""MQTT topic tree and the versioned JSON payload of a device scan (schemas `ferrogate/1` and `/2`).

Topic:   {root}/{site}/telemetry/{device}
`ferrogate/1`, one object per reading:
  {"schema": "ferrogate/1", "site", "device", "seq", "gateway_time_ns",
   "readings": [{"point", "asset"?, "v", "u", "q", "t", "r"?}]}
`ferrogate/2`, compact (what the collector publishes by default, `mqtt.payload_schema`): arrays
aligned by index, one source time when every reading has the same, and only the readings that are
not plainly good listed with their quality:
  {"schema": "ferrogate/2", "site", "device", "seq", "gateway_time_ns",
   "p": [point, ...], "u": [unit, ...], "v": [number | null, ...],
   "t": ns (every reading's) | "ts": [ns, ...] (one each),
   "x"?: [[index, q, r | null], ...] (readings whose quality is not good, or that carry a reason),
   "assets"?: {point: asset}}
Both: `t` and `gateway_time_ns` are Unix nanoseconds (integers, exact); a value is a number, or null
exactly when the reading's quality is "bad" (a number beside "bad" from another publisher is dropped
on decoding); the reason is present when the quality is not "good". Consumers read both schemas.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from ferrogate.gateway.reading import PLAIN_GOOD, Columns, Quality, Reading, ScanBatch

SCHEMA = "ferrogate/1"
SCHEMA_V2 = "ferrogate/2"
BATCH_SCHEMAS = (SCHEMA, SCHEMA_V2)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_QUALITIES = {q.value: q for q in Quality}
_GOOD = Quality.GOOD
_BAD = Quality.BAD
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
    return orjson.dumps(doc)


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
    return orjson.dumps(doc)


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


def encode_batch(batch: ScanBatch, schema: str = SCHEMA) -> bytes:
    """The batch as a `schema` message; a value that is not finite beside a quality other than bad
    is a driver's bug and raises ValueError (JSON has no NaN)."""
    if schema == SCHEMA_V2:
        return _encode_v2(batch)
    if schema != SCHEMA:
        raise ValueError(f"unknown telemetry schema {schema!r}, expected one of {BATCH_SCHEMAS}")
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
    _check_finite([item["v"] for item in readings])
    return orjson.dumps(doc)


def _encode_v2(batch: ScanBatch) -> bytes:
    readings = batch.readings
    # list comprehensions, not one loop with appends: this runs for every scan
    values: list[float | None] = [r.value for r in readings]
    listed = [i for i, r in enumerate(readings) if r.quality is not _GOOD or r.reason is not None]
    exceptions: list[list[object]] = []
    for i in listed:
        r = readings[i]
        exceptions.append([i, r.quality.value, r.reason])
        if r.quality is _BAD:
            values[i] = None  # a bad reading carries no value
    _check_finite(values)
    times = [r.source_time_ns for r in readings]
    doc: dict[str, Any] = {
        "schema": SCHEMA_V2,
        "site": batch.site,
        "device": batch.device,
        "seq": batch.seq,
        "gateway_time_ns": batch.gateway_time_ns,
        "p": [r.point for r in readings],
        "u": [r.unit for r in readings],
        "v": values,
    }
    if times and times.count(times[0]) == len(times):
        doc["t"] = times[0]
    else:
        doc["ts"] = times
    if exceptions:
        doc["x"] = exceptions
    assets = batch.assets
    if assets:
        mine = {r.point: assets[r.point] for r in readings if r.point in assets}
        if mine:
            doc["assets"] = mine
    return orjson.dumps(doc)


def _check_finite(values: list[float | None]) -> None:
    """orjson writes NaN and infinities as null, which would turn a number into a missing value."""
    if math.isfinite(sum(filter(None, values))):  # C speed; drops None (and zeros, finite anyway)
        return
    for v in values:  # the sum may also have overflowed: find the culprit, if any
        if v is not None and not math.isfinite(v):
            raise ValueError(f"a reading's value is not finite ({v}): JSON cannot carry it")


def check_size(payload: bytes, max_bytes: int) -> None:
    """Refuse a message before parsing it when it is larger than any scan batch should be."""
    if len(payload) > max_bytes:
        raise PayloadError(f"message of {len(payload)} bytes is larger than mqtt.max_message_bytes ({max_bytes})")


def _json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:  # also: invalid UTF-8, nesting deeper than 1024, NaN, 1e999
        raise PayloadError(f"not JSON: {exc}") from exc


def decode_batch(payload: bytes) -> ScanBatch:
    """Parse and check a telemetry message of either schema; raises PayloadError with the reason."""
    decoded = decode_telemetry(payload)
    return decoded.batch() if isinstance(decoded, Columns) else decoded


def decode_telemetry(payload: bytes) -> ScanBatch | Columns:
    """Parse and check a telemetry message: a `ferrogate/1` message as its ScanBatch, a `ferrogate/2`
    one as its Columns (`Columns.batch()` makes the ScanBatch); raises PayloadError with the reason."""
    doc = _json(payload)
    if not isinstance(doc, dict):
        raise PayloadError("payload is not a JSON object")
    schema = doc.get("schema")
    if schema not in BATCH_SCHEMAS:
        raise PayloadError(f"unknown schema {schema!r}, expected {SCHEMA!r} or {SCHEMA_V2!r}")
    try:
        site, device, seq, gw = doc["site"], doc["device"], doc["seq"], doc["gateway_time_ns"]
        items = doc["readings"] if schema == SCHEMA else None
    except KeyError as exc:
        raise PayloadError(f"missing field {exc.args[0]!r}") from exc
    if not (isinstance(site, str) and isinstance(device, str) and _is_int(seq) and _is_int(gw)):
        raise PayloadError("site/device must be strings, seq/gateway_time_ns integers")
    if schema == SCHEMA_V2:
        return _decode_v2(doc, site, device, seq, gw)
    if not isinstance(items, list):
        raise PayloadError("'readings' is not a list")
    batch = ScanBatch(site=site, device=device, seq=seq, gateway_time_ns=gw)
    for i, item in enumerate(items):
        batch.readings.append(_decode_reading(item, i, batch.assets))
    return batch


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise PayloadError(f"missing field {key!r}" if value is None else f"{key!r} is not a list")
    return value


def _decode_v2(doc: dict[str, Any], site: str, device: str, seq: int, gw: int) -> Columns:
    """Each array is checked whole at C speed (types of its items as a set, min/max, a sum); only an
    array that fails, or values beside readings that are not plainly good, are walked item by item."""
    points, units, values = _list(doc, "p"), _list(doc, "u"), _list(doc, "v")
    n = len(points)
    if len(units) != n or len(values) != n:
        raise PayloadError(f"'p', 'u' and 'v' must have the same length ({n}, {len(units)}, {len(values)})")
    t, times = doc.get("t"), None
    if t is None:
        times = _list(doc, "ts")
        if len(times) != n:
            raise PayloadError(f"'ts' must have one time per reading ({len(times)} for {n})")
        if times and not (set(map(type, times)) == {int} and min(times) >= INT64_MIN and max(times) <= INT64_MAX):
            i = next(i for i, t in enumerate(times) if not _is_int(t))
            raise PayloadError(f"ts[{i}] must be integer nanoseconds")
    elif not _is_int(t):
        raise PayloadError("t must be integer nanoseconds")
    special = _exceptions(doc.get("x"), n)
    assets: dict[str, str] = {}
    given = doc.get("assets")
    if given is not None:
        if not isinstance(given, dict):
            raise PayloadError("'assets' is not an object")
        assets.update((k, v) for k, v in given.items() if isinstance(v, str))
    if points and not (set(map(type, points)) == _STR and all(points)):
        i = next(i for i, p in enumerate(points) if type(p) is not str or not p)
        raise PayloadError(f"p[{i}] must be a point id")
    if units and not set(map(type, units)) <= _STR:
        i = next(i for i, u in enumerate(units) if type(u) is not str)
        raise PayloadError(f"u[{i}] must be a string")
    # orjson refuses NaN and infinities; the sum also catches a float a huge int would not fit
    if special or not (set(map(type, values)) <= _FLOAT and math.isfinite(sum(values))):
        values = _checked_values(values, special)
    return Columns(site, device, seq, gw, points, units, values, t, times, special, assets)


_STR = {str}
_FLOAT = {float}


def _checked_values(values: list[Any], special: dict[int, tuple[Quality, str | None]]) -> list[float | None]:
    """The values as floats, None for a bad reading (a number beside "bad" is not kept)."""
    out: list[float | None] = []
    append = out.append
    for i, value in enumerate(values):
        quality = special.get(i, PLAIN_GOOD)[0] if special else _GOOD
        if value is None:
            if quality is not _BAD:
                raise PayloadError(f"v[{i}] is null but quality is {quality.value}")
            append(None)
        elif (type(value) is float or type(value) is int) and math.isfinite(value):  # not bool
            append(None if quality is _BAD else float(value))
        else:
            raise PayloadError(f"v[{i}] must be a finite number or null")
    return out


def _exceptions(x: object, n: int) -> dict[int, tuple[Quality, str | None]]:
    """The `x` list: index -> (quality, reason) of the readings that are not plainly good."""
    if x is None:
        return {}
    if not isinstance(x, list):
        raise PayloadError("'x' is not a list")
    out: dict[int, tuple[Quality, str | None]] = {}
    for k, item in enumerate(x):
        if not (isinstance(item, list) and len(item) == 3):
            raise PayloadError(f"x[{k}] must be [index, quality, reason]")
        i, q, reason = item
        if not (type(i) is int and 0 <= i < n) or i in out:
            raise PayloadError(f"x[{k}]: index must be a reading's, once")
        quality = _QUALITIES.get(q) if isinstance(q, str) else None
        if quality is None:
            raise PayloadError(f"x[{k}]: quality must be one of {sorted(_QUALITIES)}")
        if reason is not None and not isinstance(reason, str):
            raise PayloadError(f"x[{k}]: reason must be a string or null")
        out[i] = (quality, reason)
    return out


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
