"""The `--plant` file of every command: loaded, or every problem printed and exit code 1."""

from __future__ import annotations

import sys
from pathlib import Path

from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.config_loader import ConfigError, load_plant


def load_or_exit(file: Path) -> PlantConfig:
    try:
        return load_plant(file)
    except ConfigError as exc:
        print(f"cannot use {file}:\n{exc}", file=sys.stderr)  # file:line: yaml.path: reason, each
        raise SystemExit(1) from None
