"""InfluxDB line protocol for readings (measurement `reading`).

reading,site=S,device=D,point=P,asset=A,unit=U value=<float>,quality="good"[,reason="..."] <ns>

device_status,site=S,device=D online=true|false <ns>

Tags are bounded by the plant model (site, device, point, asset, unit); quality and reason are
fields, so a later delivery of the same series and timestamp overwrites instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ferrogate.gateway.reading import Columns, Quality, ScanBatch

MEASUREMENT = "reading"
STATUS_MEASUREMENT = "device_status"
# series keys ("reading,site=..,unit=.. ") are built once per point; the cache is bounded because
# decoded MQTT payloads, not only the plant file, name the points
SERIES_CACHE_LIMIT = 100_000
_series_cache: dict[tuple[str, str, str, str | None, str], str] = {}
_QUALITY_FIELD = {q: f'quality="{q.value}"' for q in Quality}
# (site, device) -> (points, units, assets, their series keys): a device sends the same points scan
# after scan, so one comparison of its lists stands for a lookup per point
_device_series: dict[tuple[str, str], tuple[list[str], list[str], dict[str, str], list[str]]] = {}

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " "})


def escape_tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


def quote_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def series_key(site: str, device: str, point: str, asset: str | None, unit: str) -> str:
    """Measurement and tag set of a point's series, with the separating space."""
    key = (site, device, point, asset, unit)
    series = _series_cache.get(key)
    if series is None:
        series = f"{MEASUREMENT},site={escape_tag(site)},device={escape_tag(device)},point={escape_tag(point)}"
        if asset is not None:
            series += ",asset=" + escape_tag(asset)
        series += ",unit=" + escape_tag(unit) + " "
        if len(_series_cache) >= SERIES_CACHE_LIMIT:
            _series_cache.clear()
        _series_cache[key] = series
    return series


def written_whole(always: tuple[str, ...]) -> Callable[[Mapping[str, Any]], bool]:
    """A test of a row read back (InfluxV1Client.query_whole): does it hold every field its writer
    always writes? InfluxDB 1.x can return a point caught half written or half deleted."""
    return lambda row: all(row.get(name) is not None for name in always)


def reading_whole(value: Any, quality: Any) -> bool:
    """A reading row as `_fields` writes it: a quality always, a value unless the reading is bad
    (a good one always has one; an uncertain one may not, e.g. a non-finite number)."""
    return quality is not None and (value is not None or quality != Quality.GOOD.value)


def _fields(value: float | None, quality: Quality, reason: str | None) -> str:
    fields = _QUALITY_FIELD[quality]
    if value is not None and quality is not Quality.BAD:  # a bad reading has no value field
        fields = f"value={float(value)!r},{fields}"
    if reason is not None:
        fields += ",reason=" + quote_field(reason)
    return fields


def batch_lines(batch: ScanBatch) -> list[str]:
    """Line protocol for every reading of a batch; a bad reading keeps its quality, loses no row."""
    site, device, assets = batch.site, batch.device, batch.assets
    cache = _series_cache
    lines: list[str] = []
    append = lines.append
    for r in batch.readings:
        series = cache.get((site, device, r.point, assets.get(r.point), r.unit))
        if series is None:
            series = series_key(site, device, r.point, assets.get(r.point), r.unit)
        append(f"{series}{_fields(r.value, r.quality, r.reason)} {r.source_time_ns}")
    return lines


def columns_lines(columns: Columns) -> list[str]:
    """The same lines as `batch_lines(columns.batch())`, made from the arrays (no Reading objects):
    the plainly good readings in one comprehension, then the others' lines put in their places."""
    series = _series_of(columns)
    values, special = columns.values, columns.special
    good = _QUALITY_FIELD[Quality.GOOD]
    if columns.times is None:
        tail = f",{good} {columns.time_ns}"
        # a bad reading's None never reaches repr: its line is replaced below
        lines = [f"{s}value={v!r}{tail}" for s, v in zip(series, values, strict=True)]
    else:
        lines = [f"{s}value={v!r},{good} {t}" for s, v, t in zip(series, values, columns.times, strict=True)]
    for i, (quality, reason) in special.items():
        t = columns.time_ns if columns.times is None else columns.times[i]
        lines[i] = f"{series[i]}{_fields(values[i], quality, reason)} {t}"
    return lines


def _series_of(columns: Columns) -> list[str]:
    key = (columns.site, columns.device)
    known = _device_series.get(key)
    points, units, assets = columns.points, columns.units, columns.assets
    if known is not None and known[0] == points and known[1] == units and known[2] == assets:
        return known[3]
    series = [series_key(key[0], key[1], p, assets.get(p), u) for p, u in zip(points, units, strict=True)]
    if len(_device_series) >= SERIES_CACHE_LIMIT:
        _device_series.clear()
    _device_series[key] = (points, units, assets, series)
    return series


def device_status_line(site: str, device: str, online: bool, time_ns: int) -> str:
    return (
        f"{STATUS_MEASUREMENT},site={escape_tag(site)},device={escape_tag(device)} "
        f"online={'true' if online else 'false'} {time_ns}"
    )
