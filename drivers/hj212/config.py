"""An HJ 212 device in the plant file: one CEMS data logger that connects to us (we listen), known
by its MN and password, with its stack's points: command (real-time, minute, hourly, daily data),
factor code and suffix -> point id and unit.

    - id: eaf1_cems
      protocol: hj212
      mn: "88888880000001"             # the logger's MN (监测点编号)
      password_env: EAF1_CEMS_PW       # its PW, or password_file: PATH
      listen_port: 9212                 # loggers of one port share one listener
      points:
        - {id: so2, code: a21026-Rtd, unit: mg/m3}                      # data: realtime (2011)
        - {id: so2_hour_kg, code: a21026-Cou, data: hour, unit: kg}     # 2061

`scan_interval_s` is how often the logger sends real-time data (30 s in HJ 212-2017's examples):
the API calls a logger's data stale after `stale_after_scans` of those.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ferrogate.drivers.config import DeviceBase, PointBase
from ferrogate.drivers.hj212.protocol.codes import DATA_COMMANDS, SUFFIXES
from ferrogate.gateway.model_base import Credentials, TimeZone

DataKind = Literal["realtime", "minute", "hour", "day"]
_CODE = re.compile(r"^([A-Za-z0-9]{1,12})-([A-Za-z]{1,12})$")
_MN = re.compile(r"^[A-Za-z0-9_\-]{1,24}$")


class Hj212Point(PointBase):
    code: str = Field(description="factor code and suffix as sent, e.g. a21026-Rtd, a21026-Avg, a00000-Cou")
    data: DataKind | None = Field(None, description="realtime (2011), minute (2051), hour (2061), day (2031)")

    @field_validator("code")
    @classmethod
    def _factor_and_suffix(cls, value: str) -> str:
        m = _CODE.match(value)
        if m is None:
            raise ValueError("must be 'factor-suffix', e.g. a21026-Rtd")
        if m.group(2) not in SUFFIXES or m.group(2) in ("Flag", "EFlag", "SampleTime"):
            known = ", ".join(s for s in SUFFIXES if s not in ("Flag", "EFlag", "SampleTime"))
            raise ValueError(f"suffix {m.group(2)!r} is not a value (one of {known})")
        return value

    @model_validator(mode="after")
    def _kind_of_data(self) -> Hj212Point:
        suffix = self.code.split("-", 1)[1]
        if self.data is None:
            if suffix not in ("Rtd", "ZsRtd"):
                raise ValueError(f"'{self.code}': say which data it comes from (data: minute, hour or day)")
            object.__setattr__(self, "data", "realtime")
        if self.scan_interval_s is not None or self.report_deadband is not None:
            raise ValueError("an HJ 212 logger sends when it wants: no scan_interval_s or report_deadband per point")
        return self

    @property
    def factor(self) -> str:
        return self.code.split("-", 1)[0]

    @property
    def suffix(self) -> str:
        return self.code.split("-", 1)[1]

    @property
    def cn(self) -> str:
        assert self.data is not None
        return DATA_COMMANDS[self.data]


class Hj212Device(DeviceBase, Credentials):
    protocol: Literal["hj212"]
    mn: str = Field(description="the logger's MN (up to 24 characters; 14 in most loggers)")
    listen_host: str = Field("0.0.0.0", description="where the gateway listens for loggers")
    listen_port: int = Field(9212, ge=1, le=65535)
    scan_interval_s: float = Field(30.0, ge=0.05, le=3600, description="how often the logger sends real-time data")
    timezone: TimeZone | None = Field(None, description="the zone of the logger's DataTime (default: the site's)")
    idle_timeout_s: float = Field(600.0, ge=1, le=86_400, description="close a connection silent this long")
    max_segment: int = Field(1024, ge=64, le=9999, description="longest data segment accepted (standard: 1024)")
    points: list[Hj212Point] = Field(min_length=1)

    @field_validator("mn")
    @classmethod
    def _mn_syntax(cls, value: str) -> str:
        if not _MN.match(value):
            raise ValueError("MN: 1-24 letters, digits, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _listening_device(self) -> Hj212Device:
        if self.password_env is None and self.password_file is None:
            raise ValueError("an HJ 212 logger needs its PW: give password_env or password_file")
        if self.username is not None:
            raise ValueError("HJ 212 has no user name: the logger is known by its MN")
        if self.clock_point is not None:
            raise ValueError("clock_point does not apply: HJ 212 readings carry their DataTime")
        seen: dict[tuple[str, str], str] = {}
        for point in self.points:
            key = (point.cn, point.code)
            if key in seen:
                raise ValueError(f"points {seen[key]!r} and {point.id!r} both read {point.code} of {point.data} data")
            seen[key] = point.id
        return self


def listener_errors(devices: list[tuple[int, Hj212Device]]) -> list[tuple[tuple[str | int, ...], str]]:
    """Across the HJ 212 devices (with their index in `devices:`): one port is listened on at one
    host, and its loggers' MNs differ (the MN is how a frame finds its device)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    hosts: dict[int, str] = {}
    mns: dict[tuple[int, str], str] = {}
    for index, device in devices:
        host = hosts.setdefault(device.listen_port, device.listen_host)
        if host != device.listen_host:
            errors.append(
                (("devices", index, "listen_host"), f"port {device.listen_port} is already listened on at {host}")
            )
        other = mns.setdefault((device.listen_port, device.mn), device.id)
        if other != device.id:
            errors.append((("devices", index, "mn"), f"MN {device.mn!r} is already device {other!r}'s"))
    return errors
