"""docs/simulators.md shows the register maps, address spaces and parameters the simulators really run
on: its generated blocks must equal what the definitions render today."""

from __future__ import annotations

from ferrogate.simulators import docs
from ferrogate.simulators.address_spaces import ADDRESS_SPACES
from ferrogate.simulators.register_maps import REGISTER_MAPS
from tests.conftest import ROOT

DOC = ROOT / "docs" / "simulators.md"


def test_generated_blocks_are_up_to_date() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert docs.regenerate(text) == text, "run: python -m ferrogate.simulators.docs docs/simulators.md"
    assert docs.main(["--check", str(DOC)]) == 0


def test_every_map_and_address_space_is_documented_and_linked_from_the_readme() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in REGISTER_MAPS:
        assert f"#### Map `{name}`" in text
    for name in ADDRESS_SPACES:
        assert f"#### Address space `{name}`" in text
    for name in docs.RENDERERS:
        assert f"<!-- generated: {name} -->" in text
    assert "(docs/simulators.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_a_stale_block_is_detected(tmp_path) -> None:
    stale = tmp_path / "simulators.md"
    stale.write_text("<!-- generated: register_maps -->\nold table\n<!-- end generated -->\n", encoding="utf-8")
    assert docs.main(["--check", str(stale)]) == 1
    assert docs.main([str(stale)]) == 0 and "#### Map `eaf_meter`" in stale.read_text(encoding="utf-8")
