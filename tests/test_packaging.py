"""The distribution installs every package directory of the user's layout."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT

LAYOUT = {
    "ferrogate": "ferrogate",
    "gateway": "ferrogate.gateway",
    "drivers": "ferrogate.drivers",
    "simulators": "ferrogate.simulators",
    "api": "ferrogate.api",
}


def test_every_package_directory_is_declared() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = set()
    for top, dotted in LAYOUT.items():
        assert config["package-dir"][dotted] == top
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([dotted, *rel.parts]))
    assert found == declared


def test_dependencies_are_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert "==" in requirement, f"{requirement} is not pinned"
