"""The gateway clock across wall-clock steps (gateway/timeutil.py `GatewayClock`): its stamps follow
the wall clock while it keeps pace with the monotonic clock, never go back or repeat when it steps,
say how far off they are meanwhile, and take a new time over once it has held. Both clocks are
injected: a step is an assignment, not a wait."""

from __future__ import annotations

import itertools

from ferrogate.gateway.timeutil import GatewayClock

S = 1_000_000_000
HOUR = 3600 * S


class Clocks:
    """A monotonic clock that advances by hand and a wall clock that is it plus an offset."""

    def __init__(self) -> None:
        self.mono = 5 * S
        self.offset = 1_780_000_000 * S

    def wall(self) -> int:
        return self.mono + self.offset

    def monotonic(self) -> int:
        return self.mono


def stamps(clock: GatewayClock, clocks: Clocks, count: int, every_s: float = 1.0) -> list[tuple[int, int]]:
    """(stamp, stepped_ns) of `count` readings `every_s` apart."""
    out = []
    for _ in range(count):
        clocks.mono += int(every_s * S)
        out.append((clock.now_ns(), clock.stepped_ns))
    return out


def test_in_pace_it_is_the_wall_clock_including_a_slew() -> None:
    clocks = Clocks()
    clock = GatewayClock(clocks.wall, clocks.monotonic)
    got = stamps(clock, clocks, 3)
    assert [t for t, _ in got] == [clocks.offset + clocks.mono - k * S for k in (2, 1, 0)]
    clocks.offset -= S // 2  # NTP slewing half a second back: within the tolerance, followed, still in order
    got += stamps(clock, clocks, 3)
    times = [t for t, _ in got]
    assert times == sorted(set(times)) and times[-1] == clocks.wall()
    assert all(stepped == 0 for _, stepped in got) and clock.steps == 0


def test_a_step_back_and_forth_keeps_the_stamps_in_order_and_says_so() -> None:
    clocks = Clocks()
    clock = GatewayClock(clocks.wall, clocks.monotonic, settle_s=60)
    before = stamps(clock, clocks, 5)
    clocks.offset -= HOUR  # stepped back an hour
    during = stamps(clock, clocks, 20)
    clocks.offset += HOUR  # and ahead again within the settle time
    after = stamps(clock, clocks, 5)
    times = [t for t, _ in before + during + after]
    assert times == sorted(set(times)), "a stamp went back or repeated"
    # during the step the stamps went on a second apart on the monotonic clock, each saying the wall
    # clock is an hour behind
    assert [b - a for a, b in itertools.pairwise(times[4:25])] == [S] * 20
    assert {stepped for _, stepped in during} == {-HOUR}
    assert {stepped for _, stepped in before + after} == {0}
    assert after[-1][0] == clocks.wall() and clock.steps == 1


def test_a_step_ahead_that_holds_is_taken_over() -> None:
    clocks = Clocks()
    clock = GatewayClock(clocks.wall, clocks.monotonic, settle_s=60)
    stamps(clock, clocks, 2)
    clocks.offset += HOUR
    during = stamps(clock, clocks, 60)  # seen first at the first of them: 59 s on the old time
    assert {stepped for _, stepped in during} == {HOUR}  # still on the old time, flagged
    after = stamps(clock, clocks, 3)
    assert [t for t, _ in after] == [clocks.wall() - k * S for k in (2, 1, 0)] and {s for _, s in after} == {0}


def test_a_step_back_that_holds_waits_after_the_last_stamp_until_the_wall_clock_passes_it() -> None:
    clocks = Clocks()
    clock = GatewayClock(clocks.wall, clocks.monotonic, settle_s=60)
    stamps(clock, clocks, 2)
    clocks.offset -= 600 * S  # ten minutes back, for good
    got = stamps(clock, clocks, 700)
    times = [t for t, _ in got]
    assert times == sorted(set(times)), "a stamp went back or repeated"
    flagged = [stepped for _, stepped in got if stepped]
    # flagged from the step until the wall clock passed the last stamp given (60 s on the old time,
    # then held just after it): about the ten minutes plus the settle time, never more
    assert 600 <= len(flagged) <= 662, len(flagged)
    assert all(stepped < 0 for stepped in flagged)
    assert got[-1] == (clocks.wall(), 0)
