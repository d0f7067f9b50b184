"""Live demand alarm: the current 15-minute window's demand, forecast from the billing meter's
readings, against the contracted or target maximum (alarm `demand_forecast_high`).

At each energy-counter reading at time t in the window [w0, w1) (aligned to the plant clock, as
the revenue meter's):

    forecast_kW = (E(t) - E(w0) + P x (w1 - t)) / (w1 - w0)

with E(w0) interpolated between the two readings around the window start, and P the power now (the
meter's active power, else the last counter interval's average). Once fewer than `lead_s` remain,
the next window is forecast too (P held for a whole window), so a load that would breach the next
window alarms at least `lead_s` before that window even starts. Critical when the current window's
forecast reaches the limit; warning from `warn_percent` (or when the next window's does); cleared
below `clear_percent`. Nothing is forecast in the first `min_elapsed_s` of a window, nor in a window
whose start could not be bracketed by readings (a gap, a counter reset): no alarm from a guess.

Pure bookkeeping on the telemetry stream (times are the readings' source times); alarms go to the
gateway's AlarmBook, listed by /api/v1/alarms like every other alarm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from ferrogate.gateway.alarms import AlarmBook, Kind, Severity
from ferrogate.gateway.cost.config import DEMAND_WINDOW_S, DemandAlarm
from ferrogate.gateway.cost.demand import window_start
from ferrogate.gateway.cost.model import CostModel
from ferrogate.gateway.energy.model import Meter
from ferrogate.gateway.reading import Quality, ScanBatch
from ferrogate.gateway.timeutil import iso_utc, ns_to_datetime

NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S


@dataclass(frozen=True, slots=True)
class Forecast:
    window_start_ns: int
    window_end_ns: int
    at_ns: int
    energy_kwh: float  # in the window so far
    power_kw: float
    forecast_kw: float  # the window's average demand if the power holds
    next_forecast_kw: float | None  # the next window's, once fewer than lead_s remain
    limit_kw: float | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("window_start_ns", "window_end_ns", "at_ns"):
            out[name.removesuffix("_ns")] = iso_utc(out.pop(name))
        return out


class DemandWatch:
    def __init__(
        self,
        book: AlarmBook,
        source: str,
        counter: Meter,
        power: Meter | None,
        settings: DemandAlarm,
        tz: ZoneInfo,
        limit_kw: Callable[[date], float | None],
        window_s: Callable[[date], int] = lambda d: DEMAND_WINDOW_S,
    ) -> None:
        self.book = book
        self.source = source  # the billing meter's asset: the alarm's source
        self.counter, self.power = counter, power
        self.devices = {counter.device} | ({power.device} if power is not None else set())
        self.settings = settings
        self.tz = tz
        self.limit_kw, self.window_s = limit_kw, window_s
        self.last: tuple[int, float] | None = None  # the last counter reading (t, kWh)
        self.power_now: tuple[int, float] | None = None  # the last power reading (t, kW)
        self.window: tuple[int, int] | None = None  # [w0, w1) being forecast
        self.start_kwh: float | None = None  # E(w0); None: the window start is not bracketed
        self.forecast: Forecast | None = None

    def snapshot(self) -> dict[str, Any] | None:
        """The latest forecast, for the API."""
        return None if self.forecast is None else {"meter": self.source, **self.forecast.as_dict()}

    def on_batch(self, batch: ScanBatch, now_ns: int) -> None:
        if batch.device not in self.devices:
            return
        usable = [r for r in batch.readings if r.value is not None and r.quality is not Quality.BAD]
        if self.power is not None:  # the scan's own power first: it is the power at its counter reading
            for r in usable:
                if (batch.device, r.point) == self.power.key:
                    self.power_now = (r.source_time_ns, r.value * self.power.to_base)  # type: ignore[operator]
        for r in usable:
            if (batch.device, r.point) == self.counter.key:
                self._energy(r.source_time_ns, r.value * self.counter.to_base, now_ns)  # type: ignore[operator]

    def _energy(self, t: int, kwh: float, now_ns: int) -> None:
        last = self.last
        if last is not None and t <= last[0]:
            return  # a late or repeated reading: the live forecast only goes forward
        self.last = (t, kwh)
        day = ns_to_datetime(t).astimezone(self.tz).date()
        window_ns = self.window_s(day) * NS_PER_S
        w0 = window_start(t, window_ns, self.tz)
        if self.window is None or self.window[0] != w0:
            self.window = (w0, w0 + window_ns)
            # E(w0) between the readings around the window start, if they are close enough
            bracketed = last is not None and last[0] <= w0 and kwh >= last[1] and t - last[0] <= window_ns
            self.start_kwh = last[1] + (kwh - last[1]) * (w0 - last[0]) / (t - last[0]) if bracketed else None
        if last is None:
            return
        if kwh < last[1]:
            self.start_kwh = None  # a reset or rollover: this window cannot be forecast
            return
        if self.start_kwh is None or (t - w0) < self.settings.min_elapsed_s * NS_PER_S:
            return
        power = self._power_kw(t, last, kwh)
        w1 = w0 + window_ns
        so_far = kwh - self.start_kwh
        forecast = (so_far + power * (w1 - t) / NS_PER_H) * NS_PER_H / window_ns
        next_kw = power if (w1 - t) <= self.settings.lead_s * NS_PER_S else None
        limit = self.limit_kw(day)
        self.forecast = Forecast(w0, w1, t, so_far, power, forecast, next_kw, limit)
        self._alarm(self.forecast, now_ns)

    def _power_kw(self, t: int, last: tuple[int, float], kwh: float) -> float:
        """The meter's active power if read since the previous counter reading, else the counter's
        average over its last interval."""
        if self.power_now is not None and self.power_now[0] >= last[0]:
            return self.power_now[1]
        return (kwh - last[1]) * NS_PER_H / (t - last[0])

    def _alarm(self, f: Forecast, now_ns: int) -> None:
        if f.limit_kw is None:
            return
        s = self.settings
        warn, clear = f.limit_kw * s.warn_percent / 100.0, f.limit_kw * s.clear_percent / 100.0
        highest = max(f.forecast_kw, f.next_forecast_kw or 0.0)
        left_s = (f.window_end_ns - f.at_ns) / NS_PER_S
        if f.forecast_kw >= f.limit_kw or highest >= warn:
            severity = Severity.critical if f.forecast_kw >= f.limit_kw else Severity.warning
            self.book.raise_(Kind.demand_forecast_high, self.source, severity, self._message(f, left_s), now_ns,
                             highest, "kW")  # fmt: skip
        elif highest < clear:
            self.book.clear(Kind.demand_forecast_high, self.source, now_ns)

    def _message(self, f: Forecast, left_s: float) -> str:
        window = ns_to_datetime(f.window_start_ns).astimezone(self.tz).strftime("%H:%M")
        assert f.limit_kw is not None
        text = (
            f"15-min demand forecast {f.forecast_kw:,.0f} kW for the window from {window} (plant time), "
            f"{f.forecast_kw / f.limit_kw * 100:.1f} % of {f.limit_kw:,.0f} kW; {left_s:.0f} s left, "
            f"{f.energy_kwh:,.0f} kWh so far, power now {f.power_kw:,.0f} kW"
        )
        if f.next_forecast_kw is not None and f.next_forecast_kw > f.forecast_kw:
            text += f"; the next window at this power: {f.next_forecast_kw / f.limit_kw * 100:.1f} % of the limit"
        return text


def watch_demand(model: CostModel, book: AlarmBook) -> DemandWatch | None:
    """The plant's demand watch (None without `cost.demand_alarm`), on the billing meter's counter."""
    settings = model.config.demand_alarm
    counter = model.meter_source.counter
    if settings is None or counter is None:
        return None

    def window_s(d: date) -> int:
        found = model.demand_charge_on(d)
        return found[1].window_s if found is not None else DEMAND_WINDOW_S

    power = model.meter_source.power
    return DemandWatch(book, model.meter, counter, power, settings, model.schedule.tz, model.demand_limit_kw, window_s)
