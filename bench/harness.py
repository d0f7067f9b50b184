"""What every measurement shares: a contender's CPU time and peak memory from the OS, the simulator
farm's request counter, and an MQTT subscriber that counts what arrives.

CPU is user + system time of the process (all its threads) from /proc/<pid>/stat; peak memory is
VmHWM from /proc/<pid>/status. Points are counted where a user would see them: at an MQTT subscriber
on the same broker (so a point that never left the gateway does not count).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt

from ferrogate.gateway.payload import PayloadError, decode_batch

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds so far of process `pid` with all its threads and its children: the
    live descendants' own times plus what the reaped ones left in their parents' cutime/cstime
    (a peer may run helpers in processes of its own).

    /proc/PID/stat counts in ticks (10 ms): a contender that needs 4 ms a second reads 0 or 1 tick
    in a smoke window of 3 s. Each live thread's run time in /proc/PID/task/TID/schedstat (ns)
    gives the total; the ticks split it into user and system, and stand in where they are more
    (a thread that exited: its time stays in the process's ticks only). Both undercount, never
    over (the ticks are truncated, the threads' sum misses exited ones), so the larger is the nearer."""
    user = system = 0.0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile: its time is in its parent's cutime once reaped
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), 3.. after the command name
        own_user, own_system = int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS
        ticks = own_user + own_system
        total = max(ticks, _run_time_s(member))
        system_share = own_system / ticks if ticks else 0.0
        user += total * (1 - system_share) + int(fields[13]) / CLOCK_TICKS
        system += total * system_share + int(fields[14]) / CLOCK_TICKS
    return user, system


def _run_time_s(pid: int) -> float:
    """The CPU seconds of process `pid`'s live threads, from the scheduler's nanosecond counts."""
    total_ns = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in threads:
        try:
            total_ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread exited meanwhile
            continue
    return total_ns / 1e9


def peak_rss_mb(pid: int) -> float:
    """VmHWM, the peak resident set, MiB: of the process, plus its live descendants' (an upper bound
    of the tree's peak, since they need not peak at once)."""
    total = 0.0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    if total == 0:
        raise RuntimeError(f"no VmHWM for pid {pid}")
    return total


def _tree(pid: int) -> list[int]:
    """`pid` and its live descendants, from each process's parent in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        member = todo.pop()
        tree.append(member)
        todo.extend(children.get(member, ()))
    return tree


def machine() -> dict[str, object]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "unknown")
    return {"cpu": model, "cores": os.cpu_count(), "python": sys.version.split()[0]}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # `bench` is importable by the farm and the floor; the caller's own path stays after it
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def spawn_farm(args: list[str], log: IO[bytes]) -> subprocess.Popen:
    """A simulator process (`python -m <args>`): one JSON line out per line in, its log to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )


async def answer_until_stopped(figures: Callable[[], dict[str, object]]) -> None:
    """A simulator process's side of spawn_farm: each line on stdin is answered with `figures()` as
    one JSON line; stdin closing or SIGTERM returns."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def on_line() -> None:
        if not sys.stdin.readline():
            stop.set()
            return
        print(json.dumps(figures()), flush=True)

    loop.add_reader(sys.stdin.fileno(), on_line)
    await stop.wait()


def snapshot(pid: int, **counts: float) -> dict[str, float]:
    """The wall clock and process `pid`'s CPU seconds now, beside the contender's counts."""
    user, system = cpu_times(pid)
    return {"wall": time.time(), "user": user, "sys": system, **counts}


def alternating(items: list, repeats: int):
    """(repeat, item): the order reversed every other repeat, so no contender always meets the
    box's load first."""
    for repeat in range(repeats):
        for item in items if repeat % 2 == 0 else items[::-1]:
            yield repeat, item


def window_figures(
    before: dict[str, float], after: dict[str, float], latencies: list[float]
) -> dict[str, float | None]:
    """A contender's CPU over a window between two snapshots (wall, user, sys seconds) and the
    latencies seen in it."""
    wall = after["wall"] - before["wall"]
    user, system = after["user"] - before["user"], after["sys"] - before["sys"]
    cpu = user + system
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return {
        "window_s": round(wall, 3),
        "cpu_s": cpu,
        "user_cpu_s": user,
        "sys_cpu_s": system,
        "cpu_share": cpu / wall,
        "sys_share": system / cpu if cpu else None,  # of the process's CPU time: the kernel's part
        "latency_p50_ms": None if p50 is None else 1000 * p50,
        "latency_p99_ms": None if p99 is None else 1000 * p99,
    }


class Farm:
    """The simulator process of one workload (bench/farm.py)."""

    def __init__(self, workload: str, profile: str, log: Path, options: tuple[str, ...] = ()) -> None:
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = spawn_farm(["bench.farm", workload, "--profile", profile, *options], self.log)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator farm of {workload} did not start (see {log})")
        self.endpoints: list[tuple[int, int]] = [tuple(e) for e in json.loads(line)["endpoints"]]

    def requests(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["requests"]

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Counts:
    messages: int = 0
    points: int = 0
    bad: int = 0
    undecodable: int = 0
    devices: set[str] = field(default_factory=set)
    latencies_s: list[float] = field(default_factory=list)  # gateway time stamp -> received


# what one message holds: a scan per device, as (device, or None when the topic's tail names it,
# points, bad points, gateway time stamp ns or None)
Scan = tuple[str | None, int, int, int | None]
Counter = Callable[[bytes], Iterable[Scan]]


def count_ferrogate(payload: bytes) -> Iterable[Scan]:
    batch = decode_batch(payload)
    return ((None, len(batch.readings), sum(r.value is None for r in batch.readings), batch.gateway_time_ns),)


def count_json_array(payload: bytes) -> Iterable[Scan]:
    values = json.loads(payload)
    return ((None, len(values), sum(v is None for v in values), None),)


class Subscriber:
    """Counts what arrives under each topic prefix (one prefix per contender), in paho's thread."""

    def __init__(self, port: int, probe_topic: str) -> None:
        self.prefixes: dict[str, tuple[Counter, Counts]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        # QoS 1 like the ingest worker; the probe topic tells the gateway that a consumer is there
        self.client.subscribe([("#", 1)])
        self.probe_topic = probe_topic
        self.client.loop_start()

    def watch(self, prefix: str, counter: Counter) -> Counts:
        counts = Counts()
        self.prefixes[prefix] = (counter, counts)
        return counts

    def _on_message(self, client, userdata, message) -> None:  # paho's callback signature
        received = time.time_ns()
        topic = message.topic
        for prefix, (counter, counts) in self.prefixes.items():
            if topic.startswith(prefix):
                try:
                    scans = list(counter(message.payload))
                except (PayloadError, ValueError, TypeError, AttributeError):
                    counts.undecodable += 1
                    return
                for device, points, bad, stamp in scans:
                    counts.messages += 1
                    counts.points += points
                    counts.bad += bad
                    counts.devices.add(device if device is not None else topic[len(prefix) :])
                    if stamp is not None:
                        counts.latencies_s.append((received - stamp) / 1e9)
                return

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.1)


def until_delivering(
    proc: subprocess.Popen, delivering: Callable[[], bool], timeout: float, what: str, log: Path
) -> None:
    """Wait until a contender's process delivers (`delivering`), failing at once if it exits."""
    wait_for(lambda: delivering() or proc.poll() is not None, timeout, what)
    if proc.poll() is not None:
        raise RuntimeError(f"{what}: the process exited with {proc.returncode}: see {log}")


def settle(warmup_s: float) -> None:
    """Warm up, then start the window half a scan past a wall-clock second (whole 1 s scans inside)."""
    time.sleep(warmup_s)
    time.sleep(1.5 - time.time() % 1.0)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def py_spy(pid: int, out: Path, seconds: float | None = None) -> subprocess.Popen:
    """Sample `pid` with py-spy (collapsed stacks, `python -m bench.stacks` sums them) for `seconds`,
    or until the process ends or the sampler is interrupted (`stop_sampler`)."""
    binary = Path(sys.executable).with_name("py-spy")
    if not binary.exists():
        raise RuntimeError("--py-spy needs py-spy in the virtualenv: .venv/bin/pip install py-spy==0.4.3")
    out.parent.mkdir(parents=True, exist_ok=True)
    duration = ["--duration", str(round(seconds))] if seconds is not None else []
    sample = [*duration, "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(
        [str(binary), "record", "--pid", str(pid), *sample],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_sampler(sampler: subprocess.Popen) -> None:
    """End a py-spy sampler early; SIGINT makes it write what it has."""
    if sampler.poll() is None:
        sampler.send_signal(signal.SIGINT)
    try:
        sampler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sampler.kill()
        sampler.wait()
