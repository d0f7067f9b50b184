"""Simulated time: accelerated history that never runs ahead of the wall clock."""

from __future__ import annotations

import pytest

from ferrogate.simulators.clock import SimClock


class FakeWall:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_runs_fast_from_the_past_then_follows_the_wall_clock() -> None:
    wall = FakeWall(1_000_000.0)
    clock = SimClock(speed=60, history_s=3600, wall=wall)
    assert clock.now() == 1_000_000.0 - 3600
    wall.t += 30  # 30 s of wall time = 30 min simulated
    assert clock.now() == pytest.approx(1_000_000.0 - 1800)
    wall.t += 3600 / 59 - 30 + 1  # past the catch-up point
    assert clock.now() == wall.t
    assert clock.now() <= wall()


def test_a_held_clock_stands_until_released_then_runs_its_whole_history() -> None:
    wall = FakeWall(1_000_000.0)
    clock = SimClock(speed=60, history_s=3600, wall=wall, held=True)
    wall.t += 20  # servers starting on a slow box
    assert clock.now() == 1_000_000.0 - 3600
    clock.release()
    wall.t += 30  # 30 min simulated after the release, none lost to the hold
    assert clock.now() == pytest.approx(1_000_000.0 - 1800)
    wall.t += (3600 + 20) / 59 - 30 + 1  # the held 20 s are caught up too
    assert clock.now() == wall.t
    clock.release()  # once only
    assert clock.now() == wall.t


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SimClock(speed=0)
    with pytest.raises(ValueError):
        SimClock(history_s=-1)
