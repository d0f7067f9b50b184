"""Curves kept as columns (no object per plain interval) give what the interval-by-interval rules
give: `Curve.windows` equals `between` window by window, and the pro-rata allocation equals the rule
applied interval by interval (the form it had before), amounts to the bit, quality and flags too."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrogate.gateway.energy.allocation import pro_rata_remainder, windows
from ferrogate.gateway.energy.books import Summed
from ferrogate.gateway.energy.counters import CounterSpec, Flag, Interval, counter_columns, counter_intervals, worst
from ferrogate.gateway.energy.events import Curve
from ferrogate.gateway.reading import Quality

S = 1_000_000_000
QUALITIES = st.sampled_from([Quality.GOOD] * 6 + [Quality.UNCERTAIN, Quality.BAD])


@st.composite
def curves(draw: st.DrawFn, gap: bool = True) -> Curve:
    """A counter's curve from readings with uneven spacing, resets, jumps and uncertain readings."""
    n = draw(st.integers(2, 40))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 60, 400]), min_size=n, max_size=n))
    times = [sum(steps[: i + 1]) * S for i in range(n)]
    deltas = draw(st.lists(st.one_of(st.floats(0, 5), st.just(-50.0), st.just(1e6)), min_size=n, max_size=n))
    values = [100.0 + sum(deltas[: i + 1]) for i in range(n)]
    qualities = draw(st.lists(st.sampled_from([Quality.GOOD] * 5 + [Quality.UNCERTAIN]), min_size=n, max_size=n))
    cols = counter_columns(times, values, qualities, CounterSpec(None, 3600.0, 0.1, 0.0))
    return Curve(cols, 300 * S if gap else None)


@settings(max_examples=200, deadline=None)
@given(curve=curves(), cuts=st.lists(st.integers(-10, 12_000), min_size=2, max_size=30))
def test_windows_equal_between_window_by_window(curve: Curve, cuts: list[int]) -> None:
    cuts = sorted(c * S // 10 for c in cuts)
    t0s, t1s = cuts[:-1], cuts[1:]
    values, qualities = curve.windows(t0s, t1s)
    expected = [curve.between(a, b) for a, b in zip(t0s, t1s, strict=True)]
    assert values == [e.value for e in expected]
    assert qualities == [e.quality for e in expected]


def test_columns_give_the_intervals_counter_intervals_gives() -> None:
    times = [0, 60 * S, 120 * S, 180 * S, 240 * S]
    values = [10.0, 20.0, 5.0, 1e6, 1e6 + 1]
    qualities = [Quality.GOOD, Quality.UNCERTAIN, Quality.GOOD, Quality.GOOD, Quality.GOOD]
    spec = CounterSpec(None, 3600.0, 0.1, 0.0)
    intervals = counter_intervals(times, values, qualities, spec)
    assert Curve(counter_columns(times, values, qualities, spec)).intervals == intervals
    assert Curve(intervals).intervals == intervals
    assert [iv.flags for iv in intervals] == [
        (Flag.uncertain_reading,),
        (Flag.counter_reset,),
        (Flag.implausible_jump,),
        (),
    ]


def pro_rata_reference(shared: Curve, own: dict[str, Summed], tolerance: float = 0.01) -> dict[str, list[Interval]]:
    """The allocation rule interval by interval, with an `Amount` per window (its earlier form)."""
    names = list(own)
    parts: dict[str, list[Interval]] = {n: [] for n in names}
    for iv in shared.intervals:
        amounts = {n: own[n].between(iv.start_ns, iv.end_ns) for n in names}
        total_own = sum(a.value for a in amounts.values())
        quality = iv.quality
        for a in amounts.values():
            quality = worst(quality, a.quality)
        flags = set(iv.flags)
        if iv.amount is None:
            for n in names:
                parts[n].append(Interval(iv.start_ns, iv.end_ns, None, Quality.BAD, tuple(flags)))
            continue
        remainder = iv.amount - total_own
        if remainder < -tolerance * max(iv.amount, 0.0):
            quality = worst(quality, Quality.UNCERTAIN)
            flags.add(Flag.negative_remainder)
        if total_own > 0:
            weights = {n: amounts[n].value / total_own for n in names}
        else:
            weights = dict.fromkeys(names, 1.0 / len(names))
            flags.add(Flag.idle_equal_split)
        for n in names:
            parts[n].append(Interval(iv.start_ns, iv.end_ns, remainder * weights[n], quality, tuple(sorted(flags))))
    return parts


@settings(max_examples=150, deadline=None)
@given(shared=curves(gap=False), a=curves(), b=curves(), c=curves())
def test_pro_rata_by_columns_equals_the_rule_interval_by_interval(shared: Curve, a: Curve, b: Curve, c: Curve) -> None:
    own = {"a": Summed([a]), "b": Summed([b, c])}  # a unit fed by two meters, too
    parts = pro_rata_remainder(shared, own)
    expected = pro_rata_reference(shared, own)
    for name, intervals in expected.items():
        # a BAD interval's flags come from a set: compare them as a set, everything else exactly
        got = parts[name].intervals
        assert [(i.start_ns, i.end_ns, i.amount, i.quality, set(i.flags)) for i in got] == [
            (i.start_ns, i.end_ns, i.amount, i.quality, set(i.flags)) for i in intervals
        ]
        for t0, t1 in [(shared.starts[0], shared.ends[-1]), (shared.starts[0] + S // 2, shared.ends[-1] - 7 * S)]:
            assert parts[name].between(t0, t1) == Curve(intervals).between(t0, t1)


def test_a_flagged_remainder_all_day_is_walked_as_one_run() -> None:
    """A remainder negative in every interval (sub-meters above the main) marks every part's interval:
    one shared mark, and a window over any of them is Uncertain with the flag."""
    step = 60 * S
    shared = Curve([Interval(i * step, (i + 1) * step, 1.0, Quality.GOOD) for i in range(1000)])
    own = Curve([Interval(i * step, (i + 1) * step, 10.0, Quality.GOOD) for i in range(1000)])
    parts = pro_rata_remainder(shared, {"a": own})
    window = parts["a"].between(500 * step + S, 501 * step)
    assert window.quality is Quality.UNCERTAIN and window.flags == {Flag.negative_remainder}
    assert math.isclose(window.value, -9.0 * (step - S) / step, rel_tol=1e-9)
    values, qualities = windows(parts["a"], [0, 10 * step], [step, 20 * step])
    assert [round(v, 9) for v in values] == [-9.0, -90.0] and qualities == [Quality.UNCERTAIN, Quality.UNCERTAIN]
