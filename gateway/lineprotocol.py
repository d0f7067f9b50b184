"""InfluxDB line protocol for readings (measurement `reading`).

reading,site=S,device=D,point=P,asset=A,unit=U value=<float>,quality="good"[,reason="..."] <ns>

Tags are bounded by the plant model (site, device, point, asset, unit); quality and reason are
fields, so a later delivery of the same series and timestamp overwrites instead of duplicating.
"""

from __future__ import annotations

from ferrogate.gateway.reading import ScanBatch

MEASUREMENT = "reading"

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " "})


def escape_tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


def quote_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def batch_lines(batch: ScanBatch) -> list[str]:
    """Line protocol for every reading of a batch; a bad reading keeps its quality, loses no row."""
    prefix = f"{MEASUREMENT},site={escape_tag(batch.site)},device={escape_tag(batch.device)},point="
    assets = batch.assets
    lines = []
    for r in batch.readings:
        asset = assets.get(r.point)
        tags = escape_tag(r.point)
        if asset is not None:
            tags += ",asset=" + escape_tag(asset)
        tags += ",unit=" + escape_tag(r.unit)
        fields = f'quality="{r.quality.value}"'
        if r.value is not None:
            fields = f"value={float(r.value)!r}," + fields
        if r.reason is not None:
            fields += ",reason=" + quote_field(r.reason)
        lines.append(f"{prefix}{tags} {fields} {r.source_time_ns}")
    return lines
