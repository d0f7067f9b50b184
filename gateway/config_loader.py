"""Load a plant YAML file and report every problem with file, YAML path, line and reason."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from pydantic import ValidationError

from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.config import DEVICE_PROTOCOLS
from ferrogate.gateway.model_base import ID_PATTERN
from ferrogate.gateway.plant_file import PlantFile

Location = tuple[str | int, ...]
# aliases let a small file stand for a huge document ("billion laughs"); validation walks all of it.
# A plant of 2,000 devices with 100 points of 8 settings each is about 3.2 million nodes.
MAX_NODES = 5_000_000
BOOL_TAG = "tag:yaml.org,2002:bool"
# a plant file nests about 8 levels; a deeper document is left to the pure-Python parser's checks
MAX_FAST_DEPTH = 100


class PlantLoader(yaml.SafeLoader):
    """YAML with only `true`/`false` as booleans (YAML 1.2). PyYAML follows YAML 1.1, where an
    unquoted `on`, `off`, `yes` or `no` is a boolean: a point id `on` would arrive as True.
    Read as strings, they stay ids where the schema wants a string, and pydantic still reads
    `yes`/`no`/`on`/`off` as booleans where the schema wants one."""


PlantLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
PlantLoader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class FastPlantLoader(getattr(yaml, "CSafeLoader", PlantLoader)):  # type: ignore[misc]
    """PlantLoader's rules on libyaml's parser (PyYAML's wheels have it): a plant of 10,000 points
    loads several times faster and with a lower memory peak than with the pure-Python parser. A
    document it refuses is parsed again by PlantLoader, whose error messages the plant-file checks
    report (the two parsers word their errors differently)."""


FastPlantLoader.yaml_implicit_resolvers = PlantLoader.yaml_implicit_resolvers


def _load_yaml(text: str) -> tuple[yaml.Node | None, object, tuple[int, str] | None]:
    """(the node tree, for line numbers; the data; an alias expansion problem that stopped the
    loading, when there is one) of a YAML document; raises yaml.YAMLError."""
    for loader in (FastPlantLoader, PlantLoader):
        try:
            root = yaml.compose(text, Loader=loader)
            if loader is FastPlantLoader and root is not None and _deeper_than(root, MAX_FAST_DEPTH):
                continue  # libyaml nests without end; PlantLoader refuses it with its usual reason
            expansion = _expansion_problem(root) if root is not None else None
            if expansion is not None:
                return root, None, expansion
            return root, yaml.load(text, Loader=loader), None  # both are SafeLoaders
        except yaml.YAMLError:
            if loader is PlantLoader:
                raise
    raise AssertionError("unreachable")


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


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _deeper_than(root: yaml.Node, limit: int) -> bool:
    stack = [(root, 1)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if id(node) not in seen:  # an alias: measured once
            seen.add(id(node))
            stack += [(child, depth + 1) for child in _children(node)]
    return False


def _expansion_problem(root: yaml.Node) -> tuple[int, str] | None:
    """(line, reason) when the document's aliases make it recurse or expand beyond MAX_NODES (what
    validation would walk: "billion laughs"); None when it is fine. Iterative: no recursion limit."""
    size: dict[int, int] = {}
    on_path: set[int] = set()  # in a depth-first walk, the nodes being expanded are the ancestors
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
            if size[key] > MAX_NODES:
                return 1, f"the document expands to more than {MAX_NODES} nodes through its aliases"
            continue
        if key in size:
            continue  # an alias to a node already measured
        if key in on_path:
            return node.start_mark.line + 1, "the document expands without end: an alias inside its own anchor"
        on_path.add(key)
        stack.append((node, True))
        stack += [(child, False) for child in _children(node)]
    return None


def _line_index(root: yaml.Node, index: dict[Location, int], scalars: dict[Location, str]) -> None:
    """Record the 1-based line of every mapping key and sequence item, and the text of every plain
    (unquoted) scalar as written. Iterative; the document has no alias cycles (checked before)."""
    stack: list[tuple[yaml.Node, Location]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode) and not node.style:  # plain: None from PyYAML, "" from libyaml
            scalars[path] = node.value
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):  # a sequence or mapping as a key has no place
                    index[(*path, key_node.value)] = key_node.start_mark.line + 1  # the key's line
                    stack.append((value_node, (*path, key_node.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, i)) for i, item in enumerate(node.value)]


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
    plant = parse_config(text, file)
    if not isinstance(plant, PlantFile):
        problem = ConfigProblem(file, ("group",), None, "this is a group center file, not a plant file")
        raise ConfigError(file, [problem])
    return plant


def parse_config(text: str, file: Path) -> PlantFile | CenterFile:
    """A plant file, or a group center file (told by its `group:` section), validated; raises
    ConfigError with every problem.

    A file that is fine is read once, into plain data, and validated: no node tree, no line index
    (at 10,000 points those held most of the load's memory peak). Any problem reads it again the
    careful way (`_parse_with_lines`), which finds every problem with its line."""
    plant = _parse_fast(text)
    return plant if plant is not None else _parse_with_lines(text, file)


def _parse_fast(text: str) -> PlantFile | CenterFile | None:
    """The validated file, or None when it has a problem of any kind (the careful way reports it)."""
    try:
        data = _load_data(text)
    except (yaml.YAMLError, RecursionError, _NotPlain):
        return None
    if not isinstance(data, dict) or "extends" in data or not _plain_tree(data):
        return None
    model: type[PlantFile] | type[CenterFile] = CenterFile if "group" in data else PlantFile
    try:
        plant = model.model_validate(data)
    except ValidationError:
        return None
    del data
    return None if plant.reference_errors() else plant


class _NotPlain(Exception):
    """Something `_load_data` leaves to the careful way: merge keys, explicit collection tags,
    an alias inside its own anchor, a collection as a mapping key."""


_MERGE_TAG = "tag:yaml.org,2002:merge"
_DEFAULT_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _load_data(text: str) -> object:
    """The document as yaml.load(text, FastPlantLoader) makes it, built straight from libyaml's
    events: PyYAML's own load composes the whole node tree first, two marks per scalar, about 45
    MiB at 10,000 points (the peak of a collect process's memory). Scalars are resolved and
    constructed by the loader's own rules, one at a time; anchors and aliases share the object as
    PyYAML does. Raises yaml.YAMLError or _NotPlain."""
    loader = FastPlantLoader(text)
    constructors = loader.yaml_constructors
    try:
        anchors: dict[str, object] = {}
        open_anchors: set[str] = set()
        # containers being filled: [container, key waiting for its value (mappings), has key, anchor]
        stack: list[list] = []
        root: object = None

        def add(value: object) -> None:
            nonlocal root
            if not stack:
                root = value
                return
            top = stack[-1]
            if isinstance(top[0], list):
                top[0].append(value)
            elif not top[2]:
                if isinstance(value, dict | list):
                    raise _NotPlain("a collection as a mapping key")
                top[1], top[2] = value, True
            else:
                top[0][top[1]] = value
                top[1], top[2] = None, False

        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                if tag == _MERGE_TAG:
                    raise _NotPlain("merge key")
                node = yaml.ScalarNode(tag, event.value, None, None, event.style)
                build = constructors.get(tag, constructors[None])
                value = build(loader, node)
                if event.anchor is not None:
                    anchors[event.anchor] = value
                add(value)
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if event.tag not in _DEFAULT_TAGS:
                    raise _NotPlain(f"tag {event.tag}")
                container: object = {} if isinstance(event, yaml.MappingStartEvent) else []
                if event.anchor is not None:
                    anchors[event.anchor] = container
                    open_anchors.add(event.anchor)
                stack.append([container, None, False, event.anchor])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                container, _, _, anchor = stack.pop()
                open_anchors.discard(anchor)
                add(container)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors or event.anchor not in anchors:
                    raise _NotPlain("an alias inside its own anchor, or to no anchor")
                add(anchors[event.anchor])
            elif isinstance(event, yaml.DocumentStartEvent) and root is not None:
                raise _NotPlain("more than one document")
        return root
    except yaml.constructor.ConstructorError as exc:
        raise _NotPlain(str(exc)) from exc
    finally:
        loader.dispose()


def _plain_tree(data: object) -> bool:
    """Whether loaded data is one the careful way would accept as it is: no deeper than
    MAX_FAST_DEPTH, no alias expanding it beyond MAX_NODES or into itself. The same measures as
    `_deeper_than` and `_expansion_problem`, on the data (an alias is a shared container)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[object, int, bool]] = [(data, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            children = node.items() if isinstance(node, dict) else node  # type: ignore[attr-defined]
            total = 1
            for child in children:
                if isinstance(child, tuple):  # a mapping's key and value
                    total += 1 + (size[id(child[1])] if isinstance(child[1], dict | list) else 1)
                else:
                    total += size[id(child)] if isinstance(child, dict | list) else 1
            size[key] = total
            if total > MAX_NODES:
                return False
            continue
        if depth > MAX_FAST_DEPTH or key in on_path:
            return False
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, depth, True))
        values = node.values() if isinstance(node, dict) else node  # type: ignore[attr-defined]
        stack += [(child, depth + 1, False) for child in values if isinstance(child, dict | list)]
    return True


def _parse_with_lines(text: str, file: Path) -> PlantFile | CenterFile:
    """parse_config the careful way: the node tree for line numbers, every problem reported."""
    try:
        root, data, expansion = _load_yaml(text)
        if expansion is not None:
            raise ConfigError(file, [ConfigProblem(file, (), *expansion)])
    except yaml.YAMLError as exc:
        raise ConfigError(file, [_yaml_problem(exc, text, file)]) from exc
    except RecursionError as exc:
        problem = ConfigProblem(file, (), 1, "not valid YAML: nested too deeply")
        raise ConfigError(file, [problem]) from exc
    if not isinstance(data, dict):
        raise ConfigError(file, [ConfigProblem(file, (), 1, "the plant file must be a YAML mapping")])
    lines: dict[Location, int] = {}
    scalars: dict[Location, str] = {}
    if root is not None:
        _line_index(root, lines, scalars)
    if "extends" in data:
        own = set(data) - {"extends"}
        data = _extend(data, file, (file.resolve(),), lines)
        # line numbers only for what this file itself says; inherited parts have none here
        lines = {loc: n for loc, n in lines.items() if loc and loc[0] in own}
    model: type[PlantFile] | type[CenterFile] = CenterFile if "group" in data else PlantFile
    try:
        plant = model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = _yaml_location(tuple(err["loc"]), data)
            problems.append(ConfigProblem(file, loc, _nearest_line(loc, lines), _reason(err, scalars.get(loc))))
        raise ConfigError(file, problems) from exc
    cross = plant.reference_errors()
    if cross:
        raise ConfigError(file, [ConfigProblem(file, loc, _nearest_line(loc, lines), msg) for loc, msg in cross])
    return plant


def _yaml_problem(exc: yaml.YAMLError, text: str, file: Path) -> ConfigProblem:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        line, column = mark.line + 1, f" at column {mark.column + 1}"
    else:  # a reader error (a character YAML does not allow) has only a position
        position = getattr(exc, "position", 0)
        line, column = text.count("\n", 0, position) + 1, ""
    what = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    return ConfigProblem(file, (), line, f"not valid YAML: {what}{column}")


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
        base = yaml.load(base_file.read_text(encoding="utf-8"), Loader=PlantLoader)  # PlantLoader is a SafeLoader
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


def _yaml_type(value: object) -> str | None:
    """What YAML made of an unquoted scalar that is not a string."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime.date):
        return "a date"
    return None


def _reason(err: dict, written: str | None = None) -> str:
    msg = str(err["msg"])
    read_as = _yaml_type(err.get("input"))
    if err["type"] == "string_type" and written is not None and err.get("input") is None:
        return f"no value given (YAML reads {repr(written) if written else 'an empty value'} as null)"
    if err["type"] == "string_type" and written is not None and read_as is not None:
        return f"YAML reads the unquoted {written!r} as {read_as}, not text: quote it ('{written}')"
    if err["type"] == "extra_forbidden":
        return "unknown field (check spelling; see the configuration reference in README.md)"
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == ID_PATTERN:
        return f"{err['input']!r} is not an id: use a lower-case letter, then a-z, 0-9 or _ (at most 63)"
    return msg.removeprefix("Value error, ")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem(path, (), None, f"cannot read file: {exc.strerror}")]) from exc


def load_plant(file: str | Path) -> PlantFile:
    path = Path(file)
    return parse_plant(_read(path), path)


def load_config(file: str | Path) -> PlantFile | CenterFile:
    """A plant file or a group center file (`ferrogate run` and `check-config` take either)."""
    path = Path(file)
    return parse_config(_read(path), path)
