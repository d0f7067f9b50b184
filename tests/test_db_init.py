"""`ferrogate db-init` against a real InfluxDB with authentication on: idempotent, least privilege."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from ferrogate.gateway.services import start_influxdb
from tests.conftest import ROOT


def db_init(plant: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ferrogate",
            "db-init",
            "--plant",
            str(plant),
            "--admin-password-env",
            "T_ADMIN",
            "--grafana-password-env",
            "T_GRAFANA",
            "--raw-retention",
            "90d",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, **env},
    )


def test_db_init_is_idempotent_and_least_privilege(tmp_path: Path) -> None:
    influx = start_influxdb(tmp_path / "influx", auth_enabled=True)
    try:
        plant = tmp_path / "plant.yaml"
        doc = yaml.safe_load((ROOT / "tests/testcases/config/valid_minimal/plant.yaml").read_text())
        doc["influxdb"] = {"url": influx.url, "database": "plant", "username": "ferrogate", "password_env": "T_GATEWAY"}
        plant.write_text(yaml.safe_dump(doc))
        env = {"T_ADMIN": "adm1n'pw", "T_GRAFANA": "graf", "T_GATEWAY": "gw"}

        first = db_init(plant, env)
        assert first.returncode == 0, first.stderr
        assert "created admin user admin" in first.stdout
        assert "created retention policy raw (90d)" in first.stdout
        assert "created retention policy long (INF)" in first.stdout
        assert "granted ALL on plant to ferrogate" in first.stdout
        assert "granted READ on plant to grafana" in first.stdout

        second = db_init(plant, env)
        assert second.returncode == 0, second.stderr
        assert "admin user admin exists" in second.stdout
        assert "retention policy raw (90d) unchanged" in second.stdout
        assert "created" not in second.stdout

        def query(q: str, auth: tuple[str, str] | None, method: str = "GET") -> httpx.Response:
            return httpx.request(method, f"{influx.url}/query", params={"q": q, "db": "plant"}, auth=auth)

        now_s = int(time.time())  # inside the 90-day raw policy

        def write(auth: tuple[str, str] | None) -> httpx.Response:
            return httpx.post(
                f"{influx.url}/write",
                params={"db": "plant", "precision": "s"},
                auth=auth,
                content=f"reading,point=p value=1.0 {now_s}".encode(),
            )

        policies = query("SHOW RETENTION POLICIES ON plant", ("admin", "adm1n'pw")).json()
        rows = {v[0]: v for v in policies["results"][0]["series"][0]["values"]}
        assert rows["raw"][1] == "2160h0m0s" and rows["raw"][4] is True
        assert rows["long"][1] == "0s" and rows["long"][4] is False

        assert write(None).status_code == 401  # nobody anonymous
        assert write(("grafana", "graf")).status_code == 403  # Grafana reads only
        assert write(("ferrogate", "gw")).status_code == 204
        stored = httpx.get(
            f"{influx.url}/query",
            auth=("grafana", "graf"),
            params={"q": "SELECT value FROM raw.reading", "db": "plant", "epoch": "s"},
        ).json()
        assert stored["results"][0]["series"][0]["values"] == [[now_s, 1]]
        # the gateway user is not an admin
        denied = query('CREATE DATABASE "other"', ("ferrogate", "gw"), method="POST")
        assert "error" in denied.text and "admin" in denied.text
    finally:
        influx.process.stop()


def test_db_init_reports_missing_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ferrogate",
            "db-init",
            "--plant",
            "tests/testcases/config/valid_minimal/plant.yaml",
            "--admin-password-env",
            "NO_SUCH_VARIABLE_X",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={k: v for k, v in os.environ.items()},
    )
    assert result.returncode == 1
    assert "NO_SUCH_VARIABLE_X is not set" in result.stderr


@pytest.mark.parametrize("bad", ["90 days", "-1d", "forever"])
def test_bad_retention_is_refused(bad: str) -> None:
    from ferrogate.gateway.influx_setup import default_policies

    with pytest.raises(ValueError, match="raw retention"):
        default_policies(bad)
