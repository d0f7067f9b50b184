"""Plant configuration: golden cases (tests/testcases/config/<case>/plant.yaml + expected.txt),
every shipped plant file, secrets and the check-config command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferrogate.gateway.config_loader import ConfigError, format_path, load_plant
from tests.conftest import ROOT

CASES = sorted((Path(__file__).parent / "testcases" / "config").iterdir())


def describe(file: Path) -> list[str]:
    try:
        load_plant(file)
    except ConfigError as exc:
        return [f"{p.line}: {format_path(p.path) or '<document>'}: {p.reason}" for p in exc.problems]
    return ["OK"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert describe(case / "plant.yaml") == expected


@pytest.mark.parametrize("plant", sorted((ROOT / "deploy" / "plants").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_plant_files_are_valid(plant: Path) -> None:
    assert describe(plant) == ["OK"]


def test_extends_list_merges_in_order() -> None:
    plant = load_plant(Path(__file__).parent / "testcases" / "config" / "extends_list" / "plant.yaml")
    assert (plant.site.id, plant.mqtt.host, plant.mqtt.port, plant.mqtt.username) == (
        "minimal",  # first base
        "broker.plant.example",  # second base over the first
        8883,
        "collector",  # the file itself over both
    )
    assert plant.mqtt.tls is not None and str(plant.mqtt.tls.ca_file) == "/etc/ferrogate/ca.crt"


def test_symlinked_plant_file_extends_relative_to_its_target(tmp_path: Path) -> None:
    """deploy/README.md commissions a site by linking /etc/ferrogate/plant.yaml to the shipped
    commissioning plant, whose `extends: demo.yaml` is relative to deploy/plants/."""
    link = tmp_path / "plant.yaml"
    link.symlink_to(ROOT / "deploy" / "plants" / "commissioning.yaml")
    assert describe(link) == ["OK"]
    assert load_plant(link).site.id == load_plant(ROOT / "deploy" / "plants" / "demo.yaml").site.id


def test_password_comes_from_environment_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plant = load_plant(CASES[0].parent / "valid_minimal" / "plant.yaml")
    assert plant.mqtt is not None and plant.influxdb is not None
    with pytest.raises(LookupError, match="FERROGATE_MQTT_PASSWORD"):
        plant.mqtt.resolve_password()
    monkeypatch.setenv("FERROGATE_MQTT_PASSWORD", "s3cret")
    assert plant.mqtt.resolve_password() == "s3cret"
    secret = tmp_path / "influx.pw"
    secret.write_text("from-a-file\n")
    influx = plant.influxdb.model_copy(update={"password_file": secret})
    assert influx.resolve_password() == "from-a-file"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-m", "ferrogate", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )


def test_check_config_command_ok_and_errors() -> None:
    ok = run_cli("check-config", "deploy/plants/demo.yaml")
    assert (ok.returncode, ok.stdout.strip()) == (0, "OK deploy/plants/demo.yaml")
    bad = run_cli("check-config", "tests/testcases/config/bad_references/plant.yaml")
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert lines[0] == "6 error(s) in tests/testcases/config/bad_references/plant.yaml:"
    assert (
        "tests/testcases/config/bad_references/plant.yaml:20: assets[0].meters.electricity_import: "
        "unknown device 'meter9'" in bad.stderr
    )
    missing = run_cli("check-config", "no/such/file.yaml")
    assert missing.returncode == 1 and "cannot read file" in missing.stderr


@pytest.mark.parametrize(
    "command",
    [["run"], ["probe", "--device", "meter1"], ["simulate"], ["db-init"], ["demo"]],
    ids=lambda c: c[0],
)
def test_every_command_names_the_problems_of_a_broken_plant_file(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from ferrogate.cli import main

    broken = Path(__file__).parent / "testcases" / "config" / "bad_fields" / "plant.yaml"
    first = (broken.parent / "expected.txt").read_text(encoding="utf-8").splitlines()[0]
    with pytest.raises(SystemExit) as exit_:
        main([command[0], "--plant", str(broken), *command[1:]])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"cannot use {broken}" in err and first.split(": ", 1)[1] in err


def test_yaml_1_1_booleans_stay_text_where_the_schema_wants_text() -> None:
    """`on`, `off`, `yes`, `no` unquoted are booleans in YAML 1.1 (PyYAML): ids stay the words
    written, and real boolean fields still read them as booleans."""
    plant = load_plant(CASES[0].parent / "yaml_booleans" / "plant.yaml")
    assert (plant.site.id, plant.site.name) == ("yes", "on")
    assert plant.mqtt is not None and (plant.mqtt.clean_start, plant.mqtt.wait_for_ingest) == (True, False)
    device = plant.devices[0]
    assert (device.id, [p.id for p in device.points]) == ("no", ["on", "off"])
    assert plant.asset_of_point() == {("no", "on"): "saf1"}


def test_check_config_says_to_quote_what_yaml_did_not_read_as_text() -> None:
    bad = run_cli("check-config", "tests/testcases/config/yaml_not_text/plant.yaml")
    assert bad.returncode == 1
    assert (
        "tests/testcases/config/yaml_not_text/plant.yaml:9: devices[0].points[0].id: "
        "YAML reads the unquoted 'true' as a boolean, not text: quote it ('true')"
        in [line.strip() for line in bad.stderr.splitlines()]
    )
