"""Plant files fuzzed with hypothesis: `check-config` never crashes, and every problem names the
file, a line and the field (or, for a file that is not YAML at all, the line where it breaks).

Three kinds of damage: values replaced, keys dropped or added anywhere in the shipped plant files
(the YAML stays well-formed, so the validator's errors are exercised); the text itself cut and
spliced (the YAML parser's errors); and YAML's own traps (aliases that expand or recurse, complex
keys, tags, deep nesting)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrogate.gateway.config_loader import ConfigError, ConfigProblem, parse_plant
from tests.conftest import ROOT

FILE = Path("fuzzed.yaml")
BASES = [
    yaml.safe_load((ROOT / "tests/testcases/config/valid_minimal/plant.yaml").read_text()),
    yaml.safe_load((ROOT / "deploy/plants/demo.yaml").read_text()),
]
WHOLE_DOCUMENT = ("not valid YAML", "the plant file must be a YAML mapping", "the document expands")
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["on", "off", "yes", "no", "~", "", "0x1F", "1e400", "2026-01-01", "password", "nsu=x;s=y"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*here, i))
    return found


@st.composite
def damaged_documents(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths(doc)[1:]))
        parent = doc
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(values)
        elif action == "drop" and isinstance(parent, dict):
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
        if not isinstance(doc, dict):
            break
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@st.composite
def spliced_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from([yaml.safe_dump(b, sort_keys=False) for b in BASES]))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 200)))
    insert = draw(st.text(alphabet=st.sampled_from([*list(":-[]{}&*!|>'\"#%@`\t\n ,?"), "a", "1"]), max_size=20))
    return text[:start] + insert + text[end:]


def check(text: str) -> list[ConfigProblem]:
    """parse_plant either returns a plant or raises ConfigError whose every problem is located."""
    try:
        parse_plant(text, FILE)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return []
    assert problems
    for problem in problems:
        assert problem.file == FILE
        assert problem.line is not None and problem.line >= 1, problem
        assert problem.path or problem.reason.startswith(WHOLE_DOCUMENT), problem
        assert str(problem).startswith(f"{FILE}:{problem.line}: ")
    return problems


@FUZZ
@given(damaged_documents())
def test_damaged_values_and_keys_are_located(text: str) -> None:
    check(text)


@FUZZ
@given(spliced_texts())
def test_damaged_text_is_located(text: str) -> None:
    check(text)


DEMO = (ROOT / "deploy/plants/demo.yaml").read_text()
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("site: &s {id: a, name: b, again: *s}\n", "the document expands"),  # an alias inside itself
        (LAUGHS + "site: {id: a, name: *i}\ndevices: []\n", "the document expands"),  # 10^9 nodes
        ("? [a, b]\n: 1\nsite: {id: a, name: b}\n", "found unhashable key"),  # a sequence as a key
        ("site: !!python/object:os.system {id: a}\n", "not valid YAML"),
        ("site: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
        ("--- {site: 1}\n--- {site: 2}\n", "not valid YAML"),
        (DEMO.replace("id: eaf1_meter", "id: 1", 1), "YAML reads the unquoted '1' as a number"),
    ],
    ids=["recursive-alias", "billion-laughs", "complex-key", "python-tag", "deep-nesting", "two-documents", "int-id"],
)
def test_yaml_traps_are_errors_with_a_place(text: str, reason: str) -> None:
    problems = check(text)
    assert any(reason in p.reason for p in problems), problems
