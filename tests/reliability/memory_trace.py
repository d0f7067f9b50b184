"""Where a long run's Python memory goes (the soak's FERROGATE_SOAK_TRACEMALLOC=1): tracemalloc
snapshots reduced at once to sizes per allocating line, so a held snapshot does not itself make the
RSS it is meant to explain; the growth between two of them by component (the books, the rest of the
gateway, drivers, simulators, the test harness, each library) and by line; and the count of live
objects per type. This process holds the gateway, the simulators and the test harness together, so
an allocation is put down to the newest frame of it that is in this repository (the line of ours
that made a library allocate), else to the library."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import sys
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2]) + "/"
FRAMES = 8  # deep enough to get from inside asyncio, aiomqtt or httpx back to a line of ours
# the repository's parts, most specific first
PARTS = (
    ("gateway/energy/", "books"),
    ("gateway/", "gateway"),
    ("drivers/", "drivers"),
    ("simulators/", "simulators"),
    ("api/", "api"),
    ("tests/", "test harness"),
)


def component(filename: str) -> str | None:
    """The repository part of a source file, or None outside the repository."""
    if not filename.startswith(ROOT):
        return None
    rel = filename[len(ROOT) :]
    return next((name for prefix, name in PARTS if rel.startswith(prefix)), "other (repo)")


def library(filename: str) -> str:
    if "site-packages/" in filename:
        return "lib " + filename.split("site-packages/", 1)[1].split("/", 1)[0]
    return "python stdlib"


@dataclass(frozen=True)
class Site:
    """Where an allocation is put down: a component and the line (`file:line`) in it."""

    component: str
    line: str


def site_of(traceback: tracemalloc.Traceback) -> Site:
    frames = list(traceback)  # oldest first: the allocating frame is the last
    for frame in reversed(frames):
        part = component(frame.filename)
        if part is not None:
            return Site(part, f"{frame.filename[len(ROOT) :]}:{frame.lineno}")
    newest = frames[-1]
    return Site(library(newest.filename), f"{newest.filename.rsplit('/', 2)[-1]}:{newest.lineno}")


@dataclass
class Mark:
    """One point of the run: plant hour, Python bytes per site and live objects per type."""

    hour: float
    sizes: Counter[Site]
    blocks: Counter[Site]
    objects: Counter[str]
    overhead: int  # bytes tracemalloc itself held


# glibc's struct mallinfo2, in order
MALLINFO2_FIELDS = (
    *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
    *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2_FIELDS]


def _mallinfo2() -> _MallInfo2 | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return None
    return libc.mallinfo2()


def heap_kib() -> dict[str, int]:
    """Cheap enough for every sample: where this process's memory is, besides its RSS. Python's
    allocated blocks (objects and buffers, in Ki blocks: a count, not a size) and C malloc's heap
    in use, free but kept (fragmentation), and in mmapped chunks (KiB; all arenas, all threads).
    Python's small objects live in pymalloc's own mmapped arenas, in none of the malloc figures."""
    out = {"py Kiblocks": sys.getallocatedblocks()}
    info = _mallinfo2()
    if info is not None:
        out["malloc used"] = info.uordblks // 1024
        out["malloc free"] = info.fordblks // 1024
        out["malloc mmap"] = info.hblkhd // 1024
    return out


def start() -> None:
    tracemalloc.start(FRAMES)


def stop() -> None:
    tracemalloc.stop()


def overhead_bytes() -> int:
    """Memory tracemalloc uses for its own traces (in RSS, not in any snapshot)."""
    return tracemalloc.get_tracemalloc_memory() if tracemalloc.is_tracing() else 0


async def mark(hour: float) -> Mark:
    """Take a snapshot (a copy of tracemalloc's table, quick) and reduce it in a worker thread: the
    grouping is Python code over every live traced block and would hold the event loop, and with it
    the gateway's scans, for many seconds; in a thread the loop keeps its turns."""
    snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    return await asyncio.to_thread(_reduce, snapshot, hour, overhead_bytes())


def _reduce(snapshot: tracemalloc.Snapshot | None, hour: float, overhead: int) -> Mark:
    """Without tracing (too slow for a loaded box), only the live objects per type are counted."""
    sizes: Counter[Site] = Counter()
    blocks: Counter[Site] = Counter()
    for stat in snapshot.statistics("traceback") if snapshot is not None else []:
        site = site_of(stat.traceback)
        sizes[site] += stat.size
        blocks[site] += stat.count
    objects: Counter[str] = Counter()
    for o in gc.get_objects():
        holder = type(o).__qualname__
        objects[holder] += 1
        # what the GC does not track (str, int, float, bytes, dicts and tuples of those): counted by
        # the type of the container that holds it, one level down
        for r in gc.get_referents(o):
            if not gc.is_tracked(r):
                objects[f"{type(r).__qualname__} in {holder}"] += 1
    return Mark(hour, sizes, blocks, objects, overhead)


def growth(a: Mark, b: Mark, top: int = 15) -> list[str]:
    """What grew from `a` to `b`: per component, the largest lines, the object types; per plant hour."""
    hours = max(b.hour - a.hour, 1e-9)
    lines = [f"Python allocations grown from plant hour {a.hour:.1f} to {b.hour:.1f} (KiB per plant hour):"]
    by_part: Counter[str] = Counter()
    for site in set(a.sizes) | set(b.sizes):
        by_part[site.component] += b.sizes[site] - a.sizes[site]
    total = sum(by_part.values())
    own = (b.overhead - a.overhead) / 1024 / hours
    if a.sizes or b.sizes:
        lines.append(f"  all traced: {total / 1024 / hours:+9.1f}   (tracemalloc's own: {own:+.1f})")
    for part, size in sorted(by_part.items(), key=lambda kv: -abs(kv[1])):
        if abs(size) >= 1024:
            lines.append(f"  {part:>24}: {size / 1024 / hours:+9.1f}")
    diffs = sorted(set(a.sizes) | set(b.sizes), key=lambda s: -(b.sizes[s] - a.sizes[s]))
    lines.append(f"  largest {top} lines:")
    for site in diffs[:top]:
        size, count = b.sizes[site] - a.sizes[site], b.blocks[site] - a.blocks[site]
        per_h = f"{size / 1024 / hours:+8.1f} KiB/h {count / hours:+9.0f} blocks/h"
        lines.append(f"    {per_h}  {site.component}: {site.line}")
    grown = sorted(b.objects, key=lambda t: -(b.objects[t] - a.objects.get(t, 0)))
    lines.append(f"  live objects per type, and untracked ones per holder (largest {top} growths, per plant hour):")
    for name in grown[:top]:
        d = b.objects[name] - a.objects.get(name, 0)
        lines.append(f"    {d / hours:+9.0f}  {name} ({a.objects.get(name, 0)} -> {b.objects[name]})")
    return lines
