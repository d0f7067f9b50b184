"""InfluxDB line protocol for readings (measurement `reading`).

reading,site=S,device=D,point=P,asset=A,unit=U value=<float>,quality="good"[,reason="..."] <ns>

device_status,site=S,device=D online=true|false <ns>

Tags are bounded by the plant model (site, device, point, asset, unit); quality and reason are
fields, so a later delivery of the same series and timestamp overwrites instead of duplicating.
"""

from __future__ import annotations

from ferrogate.gateway.reading import Quality, ScanBatch

MEASUREMENT = "reading"
STATUS_MEASUREMENT = "device_status"
# series keys ("reading,site=..,unit=.. ") are built once per point; the cache is bounded because
# decoded MQTT payloads, not only the plant file, name the points
SERIES_CACHE_LIMIT = 100_000
_series_cache: dict[tuple[str, str, str, str | None, str], str] = {}
_QUALITY_FIELD = {q: f'quality="{q.value}"' for q in Quality}

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
        quality = r.quality
        fields = _QUALITY_FIELD[quality]
        if r.value is not None and quality is not Quality.BAD:  # a bad reading has no value field
            fields = f"value={float(r.value)!r},{fields}"
        if r.reason is not None:
            fields += ",reason=" + quote_field(r.reason)
        append(f"{series}{fields} {r.source_time_ns}")
    return lines


def device_status_line(site: str, device: str, online: bool, time_ns: int) -> str:
    return (
        f"{STATUS_MEASUREMENT},site={escape_tag(site)},device={escape_tag(device)} "
        f"online={'true' if online else 'false'} {time_ns}"
    )
