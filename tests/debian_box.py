"""A bare Debian 12 box for deployment tests: a root file system made by debootstrap from Debian's
own mirror, booted with systemd as its init by systemd-nspawn. It shares the host's network (so
apt and pip inside it reach the registries, and the test reaches its services on 127.0.0.1), and
everything in it runs under the box's own systemd: `systemctl`, units, journald, users.

Needs root, `debootstrap` and `systemd-nspawn` (Debian's systemd-container); `unavailable()` says
why not when they are missing."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
# what a bare Debian 12 install boots with; everything else the walkthrough must install itself
BASE_PACKAGES = "systemd,systemd-sysv,dbus,ca-certificates"
NSPAWN_RUNTIME = Path("/run/systemd/nspawn")
# one box per host at a time: it shares the host's network and its machine name
HOST_LOCK = Path("/run/lock/ferrogate-debian-box.lock")


def unavailable() -> str | None:
    """Why a box cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap and systemd-nspawn)"
    for tool in ("debootstrap", "systemd-nspawn", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup.sh installs debootstrap and systemd-container)"
    return None


@contextmanager
def one_box_per_host() -> Iterator[None]:
    """Waits while another test suite on this host has its box up (two checkouts tested at once),
    instead of failing on the ports and machine name the two would share."""
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


class DebianBox:
    def __init__(self, directory: Path, name: str = "ferrogate-box") -> None:
        self.directory = directory
        self.root = directory / "root"
        self.name = name
        self.console_log = directory / "console.log"
        self._nspawn: subprocess.Popen[bytes] | None = None
        self._init_pid: int | None = None

    def bootstrap(self) -> None:
        log = self.directory / "debootstrap.log"
        with log.open("wb") as out:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(self.root), MIRROR],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed ({done.returncode}):\n{tail(log)}")
        # the box's name resolves to itself, as on an installed system (the broker certificate uses it)
        (self.root / "etc" / "hostname").write_text(f"{self.name}\n")
        (self.root / "etc" / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.name}\n")

    def trust_host_network(self) -> None:
        """The test machine reaches PyPI through a TLS-inspecting proxy whose CA is in its trust
        store; give the box the same trust, as a site's IT would (deploy/README.md says where)."""
        local_cas = Path("/usr/local/share/ca-certificates")
        for cert in local_cas.glob("*.crt"):
            shutil.copy(cert, self.root / local_cas.relative_to("/") / cert.name)
        # pip does not read the system store unless told; the box's update-ca-certificates makes it
        (self.root / "etc" / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")

    def boot(self, binds: dict[Path, str] | None = None, within_s: float = 60.0) -> None:
        self._private_runtime_dir()
        args = ["systemd-nspawn", "-D", str(self.root), "-M", self.name, "--register=no", "--keep-unit", "--boot"]
        for host_path, box_path in (binds or {}).items():
            args.append(f"--bind={host_path}:{box_path}")
        with self.console_log.open("wb") as console:
            self._nspawn = subprocess.Popen(
                [*args, "--console=pipe"], stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self._nspawn.returncode}:\n{tail(self.console_log)}")
            self._init_pid = self._find_init()
            if self._init_pid is not None:
                state = self.run("systemctl is-system-running --wait", check=False, timeout=within_s)
                if state.stdout.strip() in ("running", "degraded"):
                    self.run("update-ca-certificates >/dev/null")
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the box did not boot within {within_s:g} s:\n{tail(self.console_log)}")

    def run(self, script: str, check: bool = True, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """Run a bash script as root inside the box (all its namespaces), with a login-like
        environment; stdout and stderr are returned together in `stdout`."""
        assert self._init_pid is not None, "boot() first"
        env = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"]
        env += ["LANG=C.UTF-8", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"]
        # -r -w: the box's root and working directory (its /); `cd` then goes to root's home
        enter = ["nsenter", "-t", str(self._init_pid), "-m", "-u", "-i", "-p", "-C", "-r", "-w"]
        done = subprocess.run(
            [*enter, *env, "bash", "-c", f"cd\n{script}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"in the box, exit {done.returncode}: {script}\n{done.stdout[-8000:]}")
        return done

    def stop(self, within_s: float = 60.0) -> None:
        """Orderly shutdown (nspawn turns SIGTERM into the box's poweroff), killed if it hangs."""
        if self._nspawn is None or self._nspawn.poll() is not None:
            return
        self._nspawn.send_signal(signal.SIGTERM)
        try:
            self._nspawn.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            self._nspawn.kill()
            self._nspawn.wait(timeout=10)

    def _find_init(self) -> int | None:
        """The box's PID 1 as the host sees it: the child of the nspawn process."""
        assert self._nspawn is not None
        children = Path(f"/proc/{self._nspawn.pid}/task/{self._nspawn.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    @staticmethod
    def _private_runtime_dir() -> None:
        """nspawn keeps per-machine state under /run/systemd/nspawn and refuses to delete it unless
        it is on a tmpfs; on hosts whose /run is not one (containers, micro-VMs), give it one."""
        NSPAWN_RUNTIME.mkdir(parents=True, exist_ok=True)
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
        here = [(m[1], m[2]) for m in mounts if NSPAWN_RUNTIME.is_relative_to(m[1])]
        _, fstype = max(here, key=lambda m: len(m[0]))
        if fstype != "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(NSPAWN_RUNTIME)], check=True)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not written)"
