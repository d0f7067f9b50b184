"""Load a plant YAML file and report every problem with file, YAML path, line and reason."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from pydantic import ValidationError

from ferrogate.gateway.config import DEVICE_PROTOCOLS
from ferrogate.gateway.model_base import ID_PATTERN
from ferrogate.gateway.plant_file import PlantFile

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    file: Path
    path: Location
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = format_path(self.path) or "<document>"
        line = f":{self.line}" if self.line is not None else ""
        return f"{self.file}{line}: {where}: {self.reason}"


class ConfigError(Exception):
    """A plant file that cannot be used; `problems` lists every reason found."""

    def __init__(self, file: Path, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(path: Location) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_index(node: yaml.Node, path: Location, index: dict[Location, int]) -> None:
    """Record the 1-based line of every mapping key and sequence item under `node`."""
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            _line_index(value_node, (*path, key), index)
            index[(*path, key)] = key_node.start_mark.line + 1  # the key's line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)


def _nearest_line(path: Location, index: dict[Location, int]) -> int | None:
    for cut in range(len(path), -1, -1):
        if path[:cut] in index:
            return index[path[:cut]]
    return None


def _union_tags(node: dict) -> tuple[object, ...]:
    """Names pydantic puts in a location for the member of a tagged union (device protocol,
    simulated equipment kind, fault); they are not YAML keys."""
    return (*DEVICE_PROTOCOLS, node.get("kind"), node.get("fault"))


def _yaml_location(path: Location, data: object) -> Location:
    """Map pydantic's loc (which names union members, e.g. 'modbus') back to YAML keys."""
    out: list[str | int] = []
    node = data
    for part in path:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in _union_tags(node):
            # a missing or extra key: keep it, it is what the user must add or remove
            out.append(part)
            node = None
    return tuple(out)


def parse_plant(text: str, file: Path) -> PlantFile:
    """Validate YAML text as a plant configuration, raising ConfigError with every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        column = f" at column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(file, [ConfigProblem(file, (), line, f"not valid YAML: {what}{column}")]) from exc
    if not isinstance(data, dict):
        raise ConfigError(file, [ConfigProblem(file, (), 1, "the plant file must be a YAML mapping")])
    lines: dict[Location, int] = {}
    if root is not None:
        _line_index(root, (), lines)
    if "extends" in data:
        own = set(data) - {"extends"}
        data = _extend(data, file, (file.resolve(),), lines)
        # line numbers only for what this file itself says; inherited parts have none here
        lines = {loc: n for loc, n in lines.items() if loc and loc[0] in own}
    try:
        plant = PlantFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = _yaml_location(tuple(err["loc"]), data)
            problems.append(ConfigProblem(file, loc, _nearest_line(loc, lines), _reason(err)))
        raise ConfigError(file, problems) from exc
    cross = plant.reference_errors()
    if cross:
        raise ConfigError(file, [ConfigProblem(file, loc, _nearest_line(loc, lines), msg) for loc, msg in cross])
    return plant


def _extend(data: dict, file: Path, chain: tuple[Path, ...], lines: dict[Location, int]) -> dict:
    """`extends: base.yaml`, or a list of bases merged in order (later ones win), each relative to
    where this file really is (so a symlinked plant file finds its bases): the bases' mappings
    merged with this file's; lists and values given here replace the bases'."""
    ref = data.pop("extends")
    where = ConfigProblem(file, ("extends",), lines.get(("extends",)), "")
    refs = ref if isinstance(ref, list) else [ref]
    if not refs or not all(isinstance(r, str) for r in refs):
        raise ConfigError(file, [replace(where, reason="must be a path to another plant file, or a list of them")])
    merged: dict = {}
    for one in refs:
        merged = _deep_merge(merged, _load_base(one, file, chain, where))
    return _deep_merge(merged, data)


def _load_base(ref: str, file: Path, chain: tuple[Path, ...], where: ConfigProblem) -> dict:
    base_file = (file.resolve().parent / ref).resolve()
    if base_file in chain:
        raise ConfigError(file, [replace(where, reason=f"circular extends: {ref} is already being loaded")])
    try:
        base = yaml.safe_load(base_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(file, [replace(where, reason=f"cannot load {ref}: {exc}")]) from exc
    if not isinstance(base, dict):
        raise ConfigError(file, [replace(where, reason=f"{ref} is not a YAML mapping")])
    if "extends" in base:
        base = _extend(base, base_file, (*chain, base_file), {})
    return base


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _reason(err: dict) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown field (check spelling; see the configuration reference in README.md)"
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == ID_PATTERN:
        return f"{err['input']!r} is not an id: use a lower-case letter, then a-z, 0-9 or _ (at most 63)"
    return msg.removeprefix("Value error, ")


def load_plant(file: str | Path) -> PlantFile:
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem(path, (), None, f"cannot read file: {exc.strerror}")]) from exc
    return parse_plant(text, path)
