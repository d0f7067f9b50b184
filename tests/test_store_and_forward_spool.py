"""The disk spool on its own: order, durability across a reopen and a SIGKILL, the size bound with its
full-spool policies (counted), and one live owner per spool."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.spool import Spool, SpoolInUse, open_spool
from tests.conftest import ROOT


def payloads(spool: Spool) -> list[bytes]:
    return [e.payload for e in spool.peek(10_000)]


def test_entries_come_back_in_order_and_leave_only_when_confirmed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 20)
    for i in range(10):
        assert spool.append(f"t/{i}", f"p{i}".encode(), items=i, retain=i == 3)
    head = spool.peek(4)
    assert [(e.topic, e.payload, e.items, e.retain) for e in head] == [
        ("t/0", b"p0", 0, False),
        ("t/1", b"p1", 1, False),
        ("t/2", b"p2", 2, False),
        ("t/3", b"p3", 3, True),
    ]
    assert spool.peek(4) == head  # peeking takes nothing away
    spool.remove_through(head[-1].id)
    assert payloads(spool) == [f"p{i}".encode() for i in range(4, 10)]
    assert (spool.rows, spool.items, spool.bytes) == (6, sum(range(4, 10)), 12)
    # peek stops once enough items (readings, lines) are collected
    assert [e.items for e in spool.peek(100, max_items=9)] == [4, 5]
    spool.close()


def test_entries_survive_a_reopen_with_their_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first = Spool(path, "outbox", max_bytes=1 << 20)
    for i in range(5):
        first.append("t", b"x" * (i + 1), items=2)
    first.remove_through(first.peek(1)[0].id)
    last_id = first.last_id
    first.close()
    second = Spool(path, "outbox", max_bytes=1 << 20)
    assert (second.recovered, second.rows, second.items, second.bytes) == (4, 4, 8, 2 + 3 + 4 + 5)
    assert payloads(second) == [b"xx", b"xxx", b"xxxx", b"xxxxx"]
    second.append("t", b"new", items=1)
    assert second.last_id == last_id + 1  # ids keep rising: replay order stays the append order
    second.close()


def test_a_full_spool_drops_the_oldest_and_counts_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=100)
    for i in range(10):
        spool.append("t", bytes([i]) * 20, items=3)  # 20 bytes each: 5 fit
    assert payloads(spool) == [bytes([i]) * 20 for i in range(5, 10)]
    assert (spool.dropped, spool.dropped_items, spool.bytes, spool.rows) == (5, 15, 100, 5)
    assert "spool outbox full (0.0 MiB limit, policy drop_oldest): 1 entries (3 items) dropped so far" in caplog.text
    # a bigger entry makes room by dropping as many of the oldest as it takes
    spool.append("t", b"B" * 50, items=1)
    assert payloads(spool) == [bytes([8]) * 20, bytes([9]) * 20, b"B" * 50]
    assert spool.dropped == 8
    spool.close()


def test_a_full_spool_can_drop_the_newest_instead(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=60, when_full="drop_newest")
    accepted = [spool.append("t", bytes([i]) * 20, items=1) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert payloads(spool) == [bytes([i]) * 20 for i in range(3)]
    assert (spool.dropped, spool.dropped_items) == (2, 2)
    spool.close()


def test_an_entry_larger_than_the_whole_spool_is_dropped_not_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=10)
    spool.append("t", b"small", items=1)
    assert not spool.append("t", b"x" * 11, items=4)
    assert payloads(spool) == [b"small"] and (spool.dropped, spool.dropped_items) == (1, 4)
    spool.close()


def test_one_process_owns_a_spool(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    owner = open_spool(SpoolConfig(path=path), "outbox")
    with pytest.raises(SpoolInUse, match="in use by another process"):
        Spool(path, "outbox", max_bytes=100)
    other = Spool(path, "another_outbox", max_bytes=100)  # another table in the same file is fine
    other.close()
    owner.close()
    Spool(path, "outbox", max_bytes=100).close()  # free again once closed


def test_without_a_path_the_spool_is_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    spool = open_spool(SpoolConfig(), "outbox")
    assert spool.append("t", b"x", items=1) and spool.rows == 1
    assert "held in memory and lost if the process dies" in caplog.text
    spool.close()


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ferrogate.gateway.spool import Spool
    spool = Spool(Path(sys.argv[1]), "outbox", max_bytes=1 << 30)
    i = 0
    while True:
        spool.append("t", b"entry %d" % i, items=1)
        print(i, flush=True)  # only after the commit returned
        i += 1
    """
)


def test_every_committed_entry_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None
    confirmed = []
    for line in proc.stdout:
        confirmed.append(int(line))
        if len(confirmed) == 500:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    spool = Spool(path, "outbox", max_bytes=1 << 30)  # the lock died with the writer
    stored = payloads(spool)
    spool.close()
    assert stored[: len(confirmed)] == [b"entry %d" % i for i in confirmed]
    assert len(stored) >= len(confirmed)  # perhaps one more, committed but not yet printed


def test_entries_appended_together_read_the_same_from_memory_and_from_the_file(tmp_path: Path) -> None:
    payload = b"x" * 100_000  # 11 of them pass TAIL_MAX_BYTES (1 MiB): older ones are then only in the file
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 30)
    assert spool.append_many([(f"t/{i}", payload, i % 3, False) for i in range(25)]) == 25
    assert (spool.rows, spool.appended, spool.items) == (25, 25, sum(i % 3 for i in range(25)))
    spool.close()
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 30)  # reopened: nothing in memory
    assert spool.append_many([(f"u/{i}", payload, i % 3, False) for i in range(25)]) == 25
    everything = [(e.id, e.topic, e.items) for e in spool.peek(100)]
    assert [t for _, t, _ in everything] == [f"t/{i}" for i in range(25)] + [f"u/{i}" for i in range(25)]
    ids = [i for i, _, _ in everything]
    # a sender's next window, from anywhere: the file, the edge of the memory, the newest
    for after in (0, ids[24], ids[30], ids[40], ids[-2], ids[-1]):
        rest = [x for x in everything if x[0] > after]
        assert [(e.id, e.topic, e.items) for e in spool.peek(7, after=after)] == rest[:7], after
        window = [e.items for e in spool.peek(7, max_items=3, after=after)]
        assert sum(window[:-1]) < 3 <= sum(window) or window == [x[2] for x in rest[:7]], after
    spool.remove_through(ids[45])
    assert [(e.id, e.topic, e.items) for e in spool.peek(100)] == everything[46:]
    assert spool.rows == 4 and len(spool._tail) == 4  # all in memory: from the head too
    assert [(e.id, e.topic, e.items) for e in spool.peek(3)] == everything[46:49]
    spool.close()
