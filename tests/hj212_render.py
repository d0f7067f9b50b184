"""Renders what the HJ 212 receiver made of a byte stream, one line per fact, for the golden cases
(tests/testcases/hj212/<case>/) and their test."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from ferrogate.drivers.hj212.protocol.frame import encode_frame
from ferrogate.drivers.hj212.readings import PointBinding, PointMap
from ferrogate.drivers.hj212.receiver import LoggerAccount, Received, Receiver
from ferrogate.gateway.reading import Reading
from ferrogate.gateway.timeutil import iso_utc


def chunk_bytes(item: str | dict[str, str]) -> bytes:
    """A stream chunk: literal text, {segment: text} framed by encode_frame, or {base64: ...}."""
    if isinstance(item, str):
        return item.encode("utf-8")
    if "segment" in item:
        return encode_frame(item["segment"])
    return base64.b64decode(item["base64"])


def reading_line(r: Reading) -> str:
    value = "-" if r.value is None else f"{r.value:.10g}"
    return " ".join(
        filter(None, ["reading", f"{r.point}:", value, r.unit, r.quality.value, iso_utc(r.source_time_ns), r.reason])
    )


def render(received: Received, points: PointMap) -> list[str]:
    lines: list[str] = []
    for account, message in received.messages:
        s = message.segment
        lines.append(
            f"message device={account.device} MN={s.mn} QN={s.qn} ST={s.st} CN={s.cn} PW={s.pw} Flag={s.flag} "
            f"version={s.version} ack={'yes' if s.wants_ack else 'no'} packets={message.packets} "
            f"complete={'yes' if message.complete else 'no'}"
        )
        if message.data_time_ns is not None:
            lines.append(f"  DataTime {iso_utc(message.data_time_ns)}")
        lines += [f"  field {k}={v}" for k, v in message.cp.fields.items()]
        for code, values in message.cp.factors.items():
            lines.append(f"  factor {code} " + " ".join(f"{k}={v}" for k, v in values.items()))
        lines += ["  " + reading_line(r) for r in points.readings(message)]
    lines += ["reply " + reply.decode("utf-8").replace("\r\n", "\\r\\n") for reply in received.replies]
    lines += [f"error {exc}" + (f" (MN {mn})" if mn else "") for exc, mn in received.errors]
    return lines


def run_case(case: Path) -> list[str]:
    doc: dict[str, Any] = yaml.safe_load((case / "case.yaml").read_text(encoding="utf-8"))
    zone = ZoneInfo(doc.get("zone", "Asia/Shanghai"))
    accounts = {
        a["mn"]: LoggerAccount(a["mn"], a["password"], a.get("device", "logger"), zone) for a in doc["accounts"]
    }
    points = PointMap(PointBinding(**p) for p in doc.get("points", []))
    receiver = Receiver(accounts)
    lines: list[str] = []
    for index, item in enumerate(doc["stream"]):
        got = render(receiver.feed(chunk_bytes(item)), points)
        if got:
            lines.append(f"chunk {index}")
            lines += got
    pending = receiver.splitter.pending
    if pending:
        lines.append(f"pending {pending} bytes")
    return lines
