"""deploy/install.sh staged into a temporary root (no apt, no systemd here), and the systemd unit."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ferrogate.cli import _parser, parse_roles
from tests.conftest import ROOT

UNIT = ROOT / "deploy/systemd/ferrogate@.service"


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    (root / "etc/influxdb").mkdir(parents=True)
    debian_conf = Path("/etc/influxdb/influxdb.conf")  # from Debian's influxdb package
    shutil.copy(debian_conf, root / "etc/influxdb/influxdb.conf")
    run_install(root)
    return root


def run_install(root: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "deploy/install.sh"), "--root", str(root), "--skip-packages", "--skip-services"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_lays_out_program_config_broker_and_database(staged: Path) -> None:
    ferrogate = staged / "opt/ferrogate/venv/bin/ferrogate"
    checked = subprocess.run(
        [str(ferrogate), "check-config", str(staged / "etc/ferrogate/plant.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr  # the installed program works on the installed plant file
    env_file = staged / "etc/ferrogate/ferrogate.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    secrets = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if not line.startswith("#"))
    assert set(secrets) == {
        "FERROGATE_MQTT_PASSWORD",
        "FERROGATE_INFLUX_PASSWORD",
        "INFLUX_ADMIN_PASSWORD",
        "GRAFANA_INFLUX_PASSWORD",
    }
    assert all(len(v) >= 24 for v in secrets.values())
    mq = staged / "etc/mosquitto"
    assert (mq / "conf.d/ferrogate.conf").read_text() == (ROOT / "deploy/mosquitto/ferrogate.conf").read_text()
    assert (mq / "ferrogate/acl").read_text() == (ROOT / "deploy/mosquitto/acl").read_text()
    assert (mq / "ferrogate/passwd").read_text().startswith("ferrogate:")
    for name in ("ca.crt", "server.crt", "server.key"):
        assert (mq / "ferrogate" / name).exists()
    influx_conf = (staged / "etc/influxdb/influxdb.conf").read_text()
    assert "\n  auth-enabled = true\n" in influx_conf
    units = staged / "etc/systemd/system"
    for unit in ("ferrogate@.service", "ferrogate-simulator.service", "grafana-server.service.d/ferrogate.conf"):
        assert (units / unit).read_text() == (ROOT / "deploy/systemd" / unit).read_text(), unit
    # Grafana gets the read-only user's password and nothing else of ferrogate.env
    grafana_env = staged / "etc/ferrogate/grafana.env"
    assert stat.S_IMODE(grafana_env.stat().st_mode) == 0o600
    grafana = dict(line.split("=", 1) for line in grafana_env.read_text().splitlines() if not line.startswith("#"))
    assert grafana == {
        "GRAFANA_INFLUX_URL": "http://127.0.0.1:8086",
        "GRAFANA_INFLUX_PASSWORD": secrets["GRAFANA_INFLUX_PASSWORD"],
        "FERROGATE_DASHBOARDS": "/opt/ferrogate/deploy/grafana/dashboards",
    }
    assert stat.S_IMODE((staged / "etc/ferrogate/api-keys").stat().st_mode) == 0o640


def test_install_again_keeps_passwords_certificates_and_plant(staged: Path) -> None:
    keep = ["etc/ferrogate/ferrogate.env", "etc/mosquitto/ferrogate/ca.crt", "etc/ferrogate/plant.yaml"]
    before = {p: (staged / p).read_bytes() for p in keep}
    (staged / "etc/ferrogate/plant.yaml").write_text((staged / "etc/ferrogate/plant.yaml").read_text() + "# edited\n")
    before["etc/ferrogate/plant.yaml"] = (staged / "etc/ferrogate/plant.yaml").read_bytes()
    run_install(staged)
    assert {p: (staged / p).read_bytes() for p in keep} == before


def test_systemd_unit_runs_a_valid_command_with_hardening() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive in systemd
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"].replace("%i", "collect-ingest-api"))
    assert argv[0] == "/opt/ferrogate/venv/bin/ferrogate"
    args = _parser().parse_args(argv[1:])
    assert (args.command, args.role, str(args.plant)) == ("run", "collect-ingest-api", "/etc/ferrogate/plant.yaml")
    assert parse_roles(args.role) == parse_roles("collect,ingest,api") == ("collect", "ingest", "api")
    assert service["User"] == "ferrogate" and service["Restart"] == "always"
    assert service["StateDirectory"] == "ferrogate"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert unit["Install"]["WantedBy"] == "multi-user.target"
