"""Small disks that really fill up (ENOSPC), for the role processes only, without root on the host.

A holder process in its own user and mount namespace (`unshare --user --map-root-user --mount`)
mounts a small tmpfs on each directory and sleeps; a role process started behind `nsenter_argv()`
joins those namespaces and sees the small disks where its plant file puts its spool, while the host
(and the test) see the ordinary directories. The test reaches the mounted disks through the holder's
root, `/proc/<pid>/root/...`, to fill them up (`fill`) and free them again (`free`). If user
namespaces are disabled but the test runs as root, the mount namespace alone is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHUNK_BYTES = 1 << 16  # filling writes this much at a time, then single bytes (the last blocks)
FILLER = "filler"


class SmallDisks:
    def __init__(self, sizes: dict[Path, int]) -> None:
        """`sizes`: directory -> bytes of the tmpfs mounted there."""
        self.sizes = sizes
        self.holder: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Mount the disks, or skip the test saying why this box cannot."""
        for directory in self.sizes:
            directory.mkdir(parents=True, exist_ok=True)
        script = " && ".join(f"mount -t tmpfs -o size={n} tmpfs '{d}'" for d, n in self.sizes.items())
        script += " && echo mounted && exec sleep infinity"
        tried = []
        variants = [["--user", "--map-root-user", "--mount"]] + ([["--mount"]] if os.geteuid() == 0 else [])
        if shutil.which("unshare") is None or shutil.which("nsenter") is None:
            pytest.skip("a full disk needs unshare and nsenter (util-linux) to mount a small tmpfs for the roles")
        for flags in variants:
            holder = subprocess.Popen(  # noqa: ASYNC220 - starts at once; its output is awaited below
                ["unshare", *flags, "--propagation", "private", "sh", "-c", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            assert holder.stdout is not None
            line = await asyncio.to_thread(holder.stdout.readline)
            if line.strip() == b"mounted":
                self.holder, self.user_namespace = holder, "--user" in flags
                return
            _, err = await asyncio.to_thread(holder.communicate)
            tried.append(f"unshare {' '.join(flags)}: {err.decode(errors='replace').strip()}")
        reason = "no small tmpfs could be mounted for a full disk (user namespaces off, not root)"
        pytest.skip(f"{reason}: {'; '.join(tried)}")

    def nsenter_argv(self) -> list[str]:
        """The prefix that runs a command inside the holder's namespaces (seeing the small disks)."""
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), *(["--user"] if self.user_namespace else []), "--mount", "--"]

    def view(self, path: Path) -> Path:
        """`path` as the role processes see it (on a small disk), from the test's side."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root{path}")

    def free_bytes(self, directory: Path) -> int:
        stat = os.statvfs(self.view(directory))
        return stat.f_bavail * stat.f_frsize

    def fill(self, directory: Path) -> int:
        """Write a filler file until the disk refuses (ENOSPC); the bytes it took."""
        path = self.view(directory) / FILLER
        written = 0
        with open(path, "ab", buffering=0) as f:
            for size in (CHUNK_BYTES, 1):
                block = b"\0" * size
                while True:
                    try:
                        written += f.write(block) or 0
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free(self, directory: Path) -> None:
        (self.view(directory) / FILLER).unlink()

    async def close(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.holder.wait, 30)
