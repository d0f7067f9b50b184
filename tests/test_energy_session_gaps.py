"""Which span a new MQTT session missed, per device (gateway/energy/session_gaps.py, pure)."""

from __future__ import annotations

from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.energy.session_gaps import Gap, SessionGaps
from ferrogate.gateway.reading import Quality, Reading, ScanBatch


def batch(device: str, t: int, quality: Quality = Quality.GOOD) -> ScanBatch:
    value = None if quality is Quality.BAD else float(t)
    return ScanBatch("s", device, t, t, [Reading("energy", value, "kWh", t, quality)])


def store(**newest: int | None) -> dict[tuple[str, str], Series]:
    out = {}
    for device, t in newest.items():
        series = Series()
        if t is not None:
            series.add(t, 1.0, Quality.GOOD)
        out[(device, "energy")] = series
    return out


def test_the_span_runs_from_the_newest_usable_reading_held_to_the_first_batch_of_the_new_session() -> None:
    gaps = SessionGaps(["m1", "m2"])
    held = store(m1=100, m2=None)
    gaps.first_live(batch("m1", 150), held)  # no new session: nothing to mark
    assert not gaps.ready and not gaps.awaiting
    gaps.new_session()
    assert set(gaps.awaiting) == {"m1", "m2"}
    gaps.first_live(batch("m1", 180), held)
    # a batch of only bad readings still marks the span: it is the first the session brought
    gaps.first_live(batch("m2", 190, Quality.BAD), held)
    assert gaps.ready == {"m1": Gap(100, "energy", 180), "m2": Gap(None, "energy", 190)}
    assert not gaps.awaiting
    gaps.first_live(batch("m1", 200), held)  # later batches change nothing
    assert gaps.take("m1") == Gap(100, "energy", 180) and gaps.filled == 1


def test_a_second_new_session_keeps_the_start_of_a_span_not_read_back_yet() -> None:
    gaps = SessionGaps(["m1"])
    gaps.new_session()
    gaps.first_live(batch("m1", 180), store(m1=100))
    gaps.new_session()  # before InfluxDB held the marker: the span reaches back to where it began
    gaps.first_live(batch("m1", 400), store(m1=300))
    assert gaps.ready == {"m1": Gap(100, "energy", 400)} and gaps.sessions == 2
