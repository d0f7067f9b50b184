"""Where the peers' toolchains live and how they are installed: a cache directory outside the repo
(`$FERROGATE_BENCH_CACHE`, else `~/.cache/ferrogate-bench`), one folder per peer, each install step
logged to `<folder>/install.log`. A step that fails raises `Unavailable` with the reason, so the
bench can say why it skips that peer instead of printing a number it did not measure."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

INSTALL_TIMEOUT_S = 900.0  # npm's 300-odd packages or a venv's wheels on a slow mirror


class Unavailable(RuntimeError):
    """The peer's toolchain is not installed and cannot be installed here: the reason."""


def cache_dir(peer: str) -> Path:
    root = os.environ.get("FERROGATE_BENCH_CACHE") or Path.home() / ".cache" / "ferrogate-bench"
    path = Path(root) / peer
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_step(command: list[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> None:
    """Run one install step, its output appended to cwd/install.log; raise Unavailable if it fails."""
    log_path = cwd / "install.log"
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(command)}\n".encode())
        log.flush()
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{what}: {exc} (see {log_path})") from exc
    if done.returncode != 0:
        raise Unavailable(f"{what} failed with exit code {done.returncode} (see {log_path})")
