"""docs/hj212.md lists the code tables the driver uses: every code, factor and data flag of
drivers/hj212/protocol/codes.py appears there, with the quality and reason it maps to."""

from __future__ import annotations

from ferrogate.drivers.hj212.protocol.codes import COMMAND_CODES, DATA_FLAGS, FLUE_GAS_FACTORS, SUFFIXES, SYSTEM_CODES
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "hj212.md").read_text(encoding="utf-8")


def test_every_code_is_documented() -> None:
    missing = [c for c in [*SYSTEM_CODES, *COMMAND_CODES, *SUFFIXES] if c not in DOC]
    rows = {line.split("|")[1].strip(): line for line in DOC.splitlines() if line.startswith("| a")}
    for f in FLUE_GAS_FACTORS.values():
        row = rows.get(f.code, "")
        if not (f.name_zh in row and f"| {f.unit} |" in row and (f.cou_unit is None or f"| {f.cou_unit} |" in row)):
            missing.append(f.code)
    assert not missing


def test_the_flag_to_quality_map_is_the_code_s() -> None:
    for flag in DATA_FLAGS.values():
        reason = f"`{flag.reason}: {flag.flag}`" if flag.reason else ""
        row = f"| {flag.flag} | {flag.meaning}"
        line = next((line for line in DOC.splitlines() if line.startswith(row)), None)
        assert line is not None, flag.flag
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == flag.quality.value and cells[3] == reason, line
