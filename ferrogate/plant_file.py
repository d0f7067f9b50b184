"""The `--plant` file of every command: loaded, or every problem printed and exit code 1."""

from __future__ import annotations

import sys
from pathlib import Path

from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.config_loader import ConfigError, load_config, load_plant
from ferrogate.gateway.plant_file import PlantFile


def load_or_exit(file: Path) -> PlantFile:
    try:
        return load_plant(file)
    except ConfigError as exc:
        print(f"cannot use {file}:\n{exc}", file=sys.stderr)  # file:line: yaml.path: reason, each
        raise SystemExit(1) from None


def load_config_or_exit(file: Path) -> PlantFile | CenterFile:
    """A plant file or a group center file (`run`, `check-config`)."""
    try:
        return load_config(file)
    except ConfigError as exc:
        print(f"cannot use {file}:\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None
