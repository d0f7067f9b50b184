"""`ferrogate db-init`: create the database, retention policies and users (idempotent)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ferrogate.gateway.redact import remember
from ferrogate.plant_file import load_or_exit

# the InfluxDB client (httpx) only when this command runs: every `ferrogate` command imports this
# module for its parser, `run --role collect` too
if TYPE_CHECKING:
    from ferrogate.gateway.config import InfluxConfig
    from ferrogate.gateway.influx_setup import RetentionPolicy, User


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db-init", help="create InfluxDB database, retention policies and users (idempotent)")
    p.add_argument("--plant", type=Path, required=True, help="plant file; its influxdb section names the server")
    p.add_argument("--admin-user", default="admin", help="InfluxDB admin (created if the server has no users)")
    p.add_argument("--admin-password-env", metavar="VAR", help="environment variable with the admin password")
    p.add_argument("--admin-password-file", type=Path, metavar="FILE")
    p.add_argument("--grafana-user", default="grafana", help="read-only user for Grafana")
    p.add_argument("--grafana-password-env", metavar="VAR")
    p.add_argument("--grafana-password-file", type=Path, metavar="FILE")
    p.add_argument("--raw-retention", default="90d", help="how long raw readings are kept (e.g. 90d, INF)")


def _secret(env: str | None, file: Path | None, what: str) -> str | None:
    if env:
        if env not in os.environ:
            raise LookupError(f"{what}: environment variable {env} is not set")
        value = os.environ[env]
    elif file:
        value = file.read_text(encoding="utf-8").splitlines()[0].strip()
    else:
        return None
    remember(value)  # masked in log lines
    return value


def run(args: argparse.Namespace) -> int:
    from ferrogate.gateway.influx_setup import User, default_policies

    plant = load_or_exit(args.plant)
    if plant.influxdb is None:
        print(f"{args.plant}: no 'influxdb' section to set up", file=sys.stderr)
        return 1
    try:
        admin_pw = _secret(args.admin_password_env, args.admin_password_file, "admin password")
        grafana_pw = _secret(args.grafana_password_env, args.grafana_password_file, "grafana password")
        gateway_pw = plant.influxdb.resolve_password()
        policies = default_policies(args.raw_retention)
    except (LookupError, OSError, ValueError) as exc:
        print(f"db-init: {exc}", file=sys.stderr)
        return 1
    users = []
    if plant.influxdb.username and gateway_pw is not None:
        users.append(User(plant.influxdb.username, gateway_pw, "ALL"))
    if grafana_pw is not None:
        users.append(User(args.grafana_user, grafana_pw, "READ"))
    admin_user = User(args.admin_user, admin_pw, "ALL") if admin_pw is not None else None
    return asyncio.run(_apply(plant.influxdb, admin_user, policies, users))


async def _apply(
    influx: InfluxConfig, admin_user: User | None, policies: list[RetentionPolicy], users: list[User]
) -> int:
    from ferrogate.gateway.influx import InfluxError, InfluxV1Client
    from ferrogate.gateway.influx_setup import apply_setup

    # talk to the server as the admin (or anonymously where auth is off), not as the gateway
    anonymous = influx.model_copy(update={"username": None, "password_env": None, "password_file": None})
    client = InfluxV1Client(anonymous, (admin_user.name, admin_user.password) if admin_user else None)
    try:
        for line in await apply_setup(client, influx.database, policies, users, admin_user):
            print(line)
    except InfluxError as exc:
        print(f"db-init failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
    return 0
