"""Run a private Mosquitto and InfluxDB as child processes (demo and test harness).

Both come from Debian's packages (`mosquitto`, `influxdb`). Each gets a throw-away directory,
loopback-only free ports, and a readiness check; a failure to start raises ServiceError with
the reason and the tail of the service's own log, never a silent skip.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ferrogate.gateway.ports import LOOPBACK, PORT_ATTEMPTS, address_in_use, free_port


class ServiceError(RuntimeError):
    pass


class PortTaken(ServiceError):
    """The port is in use by another process: a port chosen by `free_port` was taken meanwhile, and a
    caller that chose it may try another one."""


def port_taken(exc: BaseException) -> bool:
    return isinstance(exc, PortTaken) or address_in_use(exc)


def port_accepts(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise ServiceError(
            f"{name} not found: install Debian's '{package}' package (apt-get install -y {package}); "
            "the README's set-up commands do this for you"
        )
    return path


@dataclass
class ManagedProcess:
    """A service child process that can be stopped and started again on the same ports and data."""

    name: str
    argv: list[str]
    log_path: Path
    ready_check: object  # callable returning bool
    ready_timeout_s: float = 30.0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if self.ready_check():  # type: ignore[operator]
            # something else already answers there; we would be testing the wrong server
            raise PortTaken(f"{self.name}: its port is already in use by another process")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            if self.ready_check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} did not become ready in {self.ready_timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Mosquitto:
    port: int
    directory: Path
    process: ManagedProcess


def listener_ports(config: str) -> list[int]:
    """The TCP ports of the `listener` lines in a Mosquitto configuration. `listener 0 <path>` is a
    unix socket, with no port to wait for."""
    return [int(port) for port in re.findall(r"^\s*listener\s+(\d+)", config, re.M) if int(port)]


def start_mosquitto(
    directory: Path, port: int | None = None, extra_config: str = "", anonymous: bool = True
) -> Mosquitto:
    """Start Mosquitto on loopback with persistence in `directory` (created if missing).

    `extra_config` is appended (e.g. password file, ACL, a TLS listener); `anonymous=False` leaves
    authentication to it."""
    binary = require_binary("mosquitto", "mosquitto")
    directory.mkdir(parents=True, exist_ok=True)
    # Mosquitto started as root drops privileges to user 'mosquitto', which cannot enter a
    # 0700 temporary directory; keep the directory traversable and stay root in that case.
    os.chmod(directory, 0o755)
    for attempt in range(PORT_ATTEMPTS):
        chosen = port or free_port()
        conf = directory / "mosquitto.conf"
        lines = [
            f"listener {chosen} {LOOPBACK}",
            f"allow_anonymous {'true' if anonymous else 'false'}",
            "persistence true",
            f"persistence_location {directory}/",
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n" + extra_config)
        # ready once every listener accepts: the ones `extra_config` adds (a TLS listener) open after
        # the first, and a client of one was refused on a loaded box (full run 32 of issue 14)
        ports = [chosen, *listener_ports(extra_config)]
        proc = ManagedProcess(
            "mosquitto",
            [binary, "-c", str(conf)],
            directory / "mosquitto.log",
            lambda ports=ports: all(port_accepts(p) for p in ports),
        )
        try:
            proc.start()
            return Mosquitto(chosen, directory, proc)
        except ServiceError as exc:
            if port is None and port_taken(exc) and attempt < PORT_ATTEMPTS - 1:
                continue  # the free port was taken between choosing and binding it: another one
            raise
    raise AssertionError("unreachable")


@dataclass
class InfluxDB:
    port: int
    directory: Path
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def _influx_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/ping", timeout=0.5) as resp:
            return resp.status == 204
    except (urllib.error.URLError, OSError):
        return False


def start_influxdb(directory: Path, port: int | None = None, auth_enabled: bool = False) -> InfluxDB:
    """Start influxd 1.x on loopback with its meta/data/wal in `directory`."""
    binary = require_binary("influxd", "influxdb")
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(PORT_ATTEMPTS):
        http_port = port or free_port()
        rpc_port = free_port()
        conf = directory / "influxdb.conf"
        conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "{LOOPBACK}:{rpc_port}"\n'
            f'[meta]\n  dir = "{directory}/meta"\n'
            f'[data]\n  dir = "{directory}/data"\n  wal-dir = "{directory}/wal"\n'
            "  query-log-enabled = false\n"
            f'[http]\n  bind-address = "{LOOPBACK}:{http_port}"\n  log-enabled = false\n'
            f"  auth-enabled = {'true' if auth_enabled else 'false'}\n"
            "[continuous_queries]\n  enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
        )
        proc = ManagedProcess(
            "influxd", [binary, "-config", str(conf)], directory / "influxd.log", lambda p=http_port: _influx_ready(p)
        )
        try:
            proc.start()
            return InfluxDB(http_port, directory, proc)
        except ServiceError as exc:
            if port is None and port_taken(exc) and attempt < PORT_ATTEMPTS - 1:
                continue  # the http or rpc port was taken between choosing and binding it
            raise
    raise AssertionError("unreachable")
