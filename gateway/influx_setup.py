"""Idempotent InfluxDB 1.x set-up: database, retention policies and least-privilege users.

Raw readings go to the default policy `raw` (finite, e.g. 90 days); derived energy intervals, heats
and KPIs go to `long` (kept indefinitely). The gateway's user may read and write its own database
only (no admin); Grafana's user may only read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.influx import influxql_string as literal

RAW_POLICY = "raw"
DERIVED_POLICY = "long"


@dataclass(frozen=True)
class RetentionPolicy:
    name: str
    duration: str  # InfluxQL duration literal, e.g. "90d", or "INF"
    default: bool = False


@dataclass(frozen=True)
class User:
    name: str
    password: str
    privilege: str  # READ, WRITE or ALL (on the one database; never an admin)


def ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def default_policies(raw_duration: str) -> list[RetentionPolicy]:
    if not re.fullmatch(r"\d+[hdw]|INF", raw_duration):
        raise ValueError(f"raw retention {raw_duration!r}: use e.g. 90d, 13w, 2160h or INF")
    return [RetentionPolicy(RAW_POLICY, raw_duration, default=True), RetentionPolicy(DERIVED_POLICY, "INF")]


DEFAULT_RAW_DURATION = "90d"


async def ensure_policies(client: InfluxV1Client, database: str) -> list[str]:
    """Create `raw` (default, 90 days) and `long` (indefinite) where missing; never alter existing ones."""
    existing = {
        row["name"]
        for s in await client.query(f"SHOW RETENTION POLICIES ON {ident(database)}", db=False)
        for row in s.rows()
    }
    created = []
    for rp in default_policies(DEFAULT_RAW_DURATION):
        if rp.name not in existing:
            clause = f"DURATION {rp.duration} REPLICATION 1" + (" DEFAULT" if rp.default else "")
            await client.query(
                f"CREATE RETENTION POLICY {ident(rp.name)} ON {ident(database)} {clause}", epoch=None, db=False
            )
            created.append(rp.name)
    return created


def _duration_hours(literal_duration: str) -> float | None:
    """'90d' -> 2160; InfluxDB reports '2160h0m0s' for it and '0s' for INF (None here)."""
    if literal_duration == "INF":
        return None
    value, unit = int(literal_duration[:-1]), literal_duration[-1]
    return value * {"h": 1, "d": 24, "w": 168}[unit]


def _reported_hours(reported: str) -> float | None:
    if reported in ("0s", "0"):
        return None
    parts = dict((u, float(v)) for v, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", reported))
    return parts.get("h", 0) + parts.get("m", 0) / 60 + parts.get("s", 0) / 3600


async def apply_setup(
    admin: InfluxV1Client,
    database: str,
    policies: list[RetentionPolicy],
    users: list[User],
    admin_user: User | None = None,
) -> list[str]:
    """Bring the server to the wanted state; returns what was done or found. Safe to run again."""
    done: list[str] = []
    if admin_user is not None:
        try:
            existing = {row["user"] for s in await admin.query("SHOW USERS", db=False) for row in s.rows()}
        except InfluxError as exc:
            if "create admin user first" not in str(exc):
                raise
            existing = set()  # a fresh server with authentication on and no users yet
        if admin_user.name not in existing:
            # with auth enabled and no users yet, InfluxDB accepts exactly this statement unauthenticated
            await admin.query(
                f"CREATE USER {ident(admin_user.name)} WITH PASSWORD {literal(admin_user.password)} "
                "WITH ALL PRIVILEGES",
                epoch=None,
                db=False,
            )
            done.append(f"created admin user {admin_user.name}")
        else:
            done.append(f"admin user {admin_user.name} exists")
    await admin.query(f"CREATE DATABASE {ident(database)}", epoch=None, db=False)
    done.append(f"database {database} present")
    current = {
        row["name"]: row
        for s in await admin.query(f"SHOW RETENTION POLICIES ON {ident(database)}", db=False)
        for row in s.rows()
    }
    for rp in policies:
        clause = f"DURATION {rp.duration} REPLICATION 1" + (" DEFAULT" if rp.default else "")
        found = current.get(rp.name)
        if found is None:
            await admin.query(
                f"CREATE RETENTION POLICY {ident(rp.name)} ON {ident(database)} {clause}", epoch=None, db=False
            )
            done.append(f"created retention policy {rp.name} ({rp.duration})")
        elif _reported_hours(found["duration"]) != _duration_hours(rp.duration) or bool(found["default"]) != rp.default:
            await admin.query(
                f"ALTER RETENTION POLICY {ident(rp.name)} ON {ident(database)} {clause}", epoch=None, db=False
            )
            done.append(f"altered retention policy {rp.name} to {rp.duration}")
        else:
            done.append(f"retention policy {rp.name} ({rp.duration}) unchanged")
    existing = {row["user"] for s in await admin.query("SHOW USERS", db=False) for row in s.rows()}
    for user in users:
        if user.privilege not in ("READ", "WRITE", "ALL"):
            raise ValueError(f"user {user.name}: privilege must be READ, WRITE or ALL")
        if user.name in existing:
            await admin.query(f"SET PASSWORD FOR {ident(user.name)} = {literal(user.password)}", epoch=None, db=False)
            await admin.query(f"REVOKE ALL ON {ident(database)} FROM {ident(user.name)}", epoch=None, db=False)
            done.append(f"user {user.name} exists: password and privilege reset")
        else:
            await admin.query(
                f"CREATE USER {ident(user.name)} WITH PASSWORD {literal(user.password)}", epoch=None, db=False
            )
            done.append(f"created user {user.name}")
        await admin.query(f"GRANT {user.privilege} ON {ident(database)} TO {ident(user.name)}", epoch=None, db=False)
        done.append(f"granted {user.privilege} on {database} to {user.name}")
    return done
