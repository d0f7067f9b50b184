"""What every driver's device and point configuration shares: ids, units, scaling, scan classes,
report by exception, timeouts and reconnects. Each driver package (`modbus/`, `opcua/`, ...)
extends these in its own `config.py` with a `protocol` literal the plant model discriminates on."""

from __future__ import annotations

from pydantic import Field

from ferrogate.gateway.model_base import Identifier, Strict


class PointBase(Strict):
    id: Identifier
    unit: str = Field(min_length=1, description="engineering unit after scaling, e.g. kWh, kW, degC")
    description: str = ""
    scale: float = 1.0
    offset: float = 0.0
    # scan class: points of one device with the same interval are read and published together
    scan_interval_s: float | None = Field(None, ge=0.05, le=3600, description="default: the device's")
    # report by exception: publish only when the value moved more than this (in `unit`) or the
    # quality changed; every point is sent again each `refresh_s` of its device
    report_deadband: float | None = Field(None, ge=0)


class DeviceBase(Strict):
    id: Identifier
    description: str = ""
    scan_interval_s: float = Field(1.0, ge=0.05, le=3600)
    timeout_s: float = Field(2.0, gt=0, le=60)
    # A point holding the device's own clock (Unix time, ms) stamps the scan's source_time;
    # without it, readings that carry no source timestamp are stamped with the gateway clock.
    clock_point: Identifier | None = None
    refresh_s: float = Field(300.0, gt=0, le=86_400, description="full refresh of report_deadband points")
    reconnect_max_s: float = Field(30.0, ge=0.1, le=3600, description="cap of the reconnect backoff")
