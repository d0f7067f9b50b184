"""The group center's file (a `group:` section listing the plants) is checked like a plant file:
every problem with file, line, path and reason; keys limited to some plants are read from the key
file and made by `ferrogate api-key create --sites`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferrogate.api.keys import KeyFileError, KeyStore, parse_lines
from ferrogate.cli import main
from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.center_runtime import Center
from ferrogate.gateway.config_loader import ConfigError, load_config, parse_config, parse_plant
from ferrogate.gateway.runtime import RoleConfigError
from tests.conftest import ROOT

CENTER = ROOT / "deploy" / "group" / "center.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("center.yaml"))
    return [str(p) for p in caught.value.problems]


def test_the_shipped_center_file_is_a_center_file() -> None:
    center = load_config(CENTER)
    assert isinstance(center, CenterFile)
    assert center.group.sites == ("fj_eaf_steel", "gz_ferroalloy")
    # its plants are the shipped example plants
    for name in ("fujian-eaf-steel.yaml", "guizhou-ferroalloy.yaml"):
        assert load_config(ROOT / "deploy" / "plants" / name).site.id in center.group.sites


def test_a_duplicate_plant_and_the_centers_own_site_are_named_with_their_lines() -> None:
    text = CENTER.read_text().replace("gz_ferroalloy", "fj_eaf_steel").replace("id: group_center", "id: fj_eaf_steel")
    found = problems(text)
    assert any("group.plants[1].site: duplicate plant site 'fj_eaf_steel'" in p for p in found), found
    assert any("group.plants[0].site: 'fj_eaf_steel' is the center's own site id" in p for p in found), found
    assert all(p.startswith("center.yaml:2") for p in found), found  # the lines of the plants


def test_unknown_and_missing_fields_of_a_center_file() -> None:
    found = problems("site: {id: c, name: C}\nmqtt: {}\ninfluxdb: {}\ngroup: {plant: []}\n")
    assert "center.yaml:4: group.plants: required field is missing" in found
    assert any(p.startswith("center.yaml:4: group.plant: unknown field") for p in found), found


def test_a_center_file_is_not_a_plant_file() -> None:
    with pytest.raises(ConfigError, match="this is a group center file, not a plant file"):
        parse_plant(CENTER.read_text(), CENTER)


def test_a_center_runs_ingest_and_api_only() -> None:
    center = load_config(CENTER)
    assert isinstance(center, CenterFile)
    with pytest.raises(RoleConfigError, match=r"a group center runs \['ingest', 'api'\], not \['collect'\]"):
        Center(center, ("collect", "ingest"))


def test_check_config_takes_a_center_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(CENTER)]) == 0
    assert capsys.readouterr().out.strip() == f"OK {CENTER}"


def test_keys_limited_to_plants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "keys"
    argv = ["api-key", "create", "--role", "viewer", "--file", str(file)]
    assert main([*argv, "--name", "east", "--sites", "fj_eaf_steel, gz_ferroalloy"]) == 0
    limited = capsys.readouterr().out.strip()
    assert main([*argv, "--name", "everyone"]) == 0
    unlimited = capsys.readouterr().out.strip()
    entries = [json.loads(line) for line in file.read_text().splitlines()]
    assert entries[0]["sites"] == ["fj_eaf_steel", "gz_ferroalloy"] and "sites" not in entries[1]
    store = KeyStore.load(file)
    east, everyone = store.check(limited), store.check(unlimited)
    assert east is not None and east.may_read("gz_ferroalloy") and not east.may_read("other_plant")
    assert everyone is not None and everyone.may_read("other_plant")
    assert main([*argv, "--name", "bad", "--sites", "Fujian EAF"]) == 1
    assert "not ids: ['Fujian EAF']" in capsys.readouterr().err


@pytest.mark.parametrize("sites", ['"fj"', "[]", "[1]", '[""]'])
def test_a_bad_sites_entry_in_the_key_file_is_refused(sites: str) -> None:
    line = f'{{"id": "a", "name": "n", "role": "viewer", "sha256": "00", "sites": {sites}}}'
    with pytest.raises(KeyFileError, match="keys:1: 'sites' must be a non-empty list of plant site ids"):
        parse_lines(line, "keys")
