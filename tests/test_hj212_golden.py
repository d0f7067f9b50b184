"""Golden cases for the HJ 212 codec: tests/testcases/hj212/<case>/case.yaml holds the logger
accounts, point bindings and a byte stream (chunks as they arrive); expected.txt what the platform
side made of it (messages, readings, 9014 replies, errors). README.md beside them says where each
frame comes from and what was checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hj212_render import run_case

CASES = sorted(p for p in (Path(__file__).parent / "testcases" / "hj212").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    assert run_case(case) == (case / "expected.txt").read_text(encoding="utf-8").splitlines()
