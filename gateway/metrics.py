"""Gateway self-metrics: per device scan latency, errors by reason, reconnects, overruns.

Plain counters and gauges updated once per scan or request (never per reading, except the
error count of readings that are not good), so they cost nothing on the hot path. An API can
serve `GatewayMetrics.render_prometheus()` at /metrics or `snapshot()` as JSON.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# upper bounds of the scan-latency histogram, seconds (Prometheus convention: le="...")
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    count: int = 0
    sum_s: float = 0.0
    last_s: float = 0.0
    max_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.count += 1
        self.sum_s += seconds
        self.last_s = seconds
        if seconds > self.max_s:
            self.max_s = seconds


@dataclass(slots=True)
class DeviceMetrics:
    device: str
    protocol: str = ""
    scans: int = 0
    overruns: int = 0  # scan slots skipped because the previous scan of the class was still running
    requests: int = 0  # protocol requests sent (Modbus reads, OPC UA Read calls)
    connect_failures: int = 0
    reconnects: int = 0  # back online after having been online before
    readings: int = 0  # readings published
    bad_readings: int = 0  # readings read whose quality was not good
    suppressed: int = 0  # readings held back by a report deadband
    online: bool = False
    errors: dict[str, int] = field(default_factory=dict)  # reason code -> readings that were not good
    scan_latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def last_scan_ms(self) -> float:
        return self.scan_latency.last_s * 1000

    def count_error(self, reason: str | None) -> None:
        key = (reason or "unknown").split(":", 1)[0]
        self.errors[key] = self.errors.get(key, 0) + 1

    def snapshot(self) -> dict[str, object]:
        h = self.scan_latency
        return {
            "device": self.device,
            "protocol": self.protocol,
            "online": self.online,
            "scans": self.scans,
            "overruns": self.overruns,
            "requests": self.requests,
            "connect_failures": self.connect_failures,
            "reconnects": self.reconnects,
            "readings": self.readings,
            "bad_readings": self.bad_readings,
            "suppressed": self.suppressed,
            "errors": dict(self.errors),
            "scan_latency_s": {
                "last": h.last_s,
                "max": h.max_s,
                "mean": h.sum_s / h.count if h.count else 0.0,
                "count": h.count,
            },
        }


class GatewayMetrics:
    """All devices' metrics; one instance per collector."""

    def __init__(self) -> None:
        self.devices: dict[str, DeviceMetrics] = {}

    def device(self, device_id: str, protocol: str = "") -> DeviceMetrics:
        m = self.devices.get(device_id)
        if m is None:
            m = self.devices[device_id] = DeviceMetrics(device_id, protocol)
        return m

    def snapshot(self) -> list[dict[str, object]]:
        return [m.snapshot() for m in self.devices.values()]

    def render_prometheus(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        counters = [
            ("scans", "scans"),
            ("overruns", "scan slots skipped because the previous scan was still running"),
            ("requests", "protocol requests sent"),
            ("connect_failures", "failed connection attempts"),
            ("reconnects", "reconnections after a lost connection"),
            ("readings", "readings published"),
            ("bad_readings", "readings read whose quality was not good"),
            ("suppressed", "readings held back by a report deadband"),
        ]
        devices = list(self.devices.values())
        for attr, help_text in counters:
            name = f"ferrogate_device_{attr}_total"
            family(name, "counter", help_text)
            out += [f'{name}{{device="{_esc(m.device)}"}} {getattr(m, attr)}' for m in devices]
        family("ferrogate_device_online", "gauge", "1 while the device answers, else 0")
        out += [f'ferrogate_device_online{{device="{_esc(m.device)}"}} {int(m.online)}' for m in devices]
        family("ferrogate_device_errors_total", "counter", "readings that were not good, by reason")
        for m in devices:
            for reason, n in sorted(m.errors.items()):
                out.append(f'ferrogate_device_errors_total{{device="{_esc(m.device)}",reason="{_esc(reason)}"}} {n}')
        name = "ferrogate_device_scan_latency_seconds"
        family(name, "histogram", "time to read and publish one scan")
        for m in devices:
            h, dev = m.scan_latency, _esc(m.device)
            cumulative = 0
            for bound, n in zip((*LATENCY_BUCKETS_S, "+Inf"), h.counts, strict=True):
                cumulative += n
                out.append(f'{name}_bucket{{device="{dev}",le="{bound}"}} {cumulative}')
            out.append(f'{name}_sum{{device="{dev}"}} {h.sum_s}')
            out.append(f'{name}_count{{device="{dev}"}} {h.count}')
        return "\n".join(out) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
