"""The generated parts of docs/simulators.md: register maps, OPC UA address spaces and equipment
parameters, rendered from the definitions the simulators run on (one source of truth).

    python -m ferrogate.simulators.docs docs/simulators.md     # rewrite the generated blocks
    python -m ferrogate.simulators.docs --check docs/simulators.md

A block sits between `<!-- generated: NAME -->` and `<!-- end generated -->`.
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from pathlib import Path

from pydantic import BaseModel

from ferrogate.simulators.address_spaces import ADDRESS_SPACES, NAMESPACE_URI
from ferrogate.simulators.config import (
    SAF_PRODUCT_DEFAULTS,
    CellsEquipment,
    CemsLoggerSim,
    EafEquipment,
    IncomerEquipment,
    LoggerFault,
    LoggerWindow,
    SafEquipment,
    StackEquipment,
    TransformerEquipment,
    WasteHeatGeneratorEquipment,
)
from ferrogate.simulators.register_maps import REGISTER_MAPS
from ferrogate.simulators.registers import READ_FUNCTION, TABLES

BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
TABLE_TITLES = {
    t: f"{name} (FC{READ_FUNCTION[t]})"
    for t, name in zip(TABLES, ("holding registers", "input registers", "coils", "discrete inputs"), strict=True)
}
EQUIPMENT_MODELS: tuple[type[BaseModel], ...] = (
    EafEquipment,
    SafEquipment,
    TransformerEquipment,
    WasteHeatGeneratorEquipment,
    IncomerEquipment,
    CellsEquipment,
    StackEquipment,
)


def render_register_maps() -> str:
    out = []
    for m in REGISTER_MAPS.values():
        out.append(f"#### Map `{m.name}`\n\n{m.description}.\n")
        for table in TABLES:
            regs = sorted(m.in_table(table), key=lambda r: r.address)
            if not regs:
                continue
            out.append(f"{TABLE_TITLES[table]}:\n")
            out.append("| address | type | word order | byte order | scale | unit | signal | meaning |")
            out.append("|---|---|---|---|---|---|---|---|")
            for r in regs:
                span = str(r.address) if r.count == 1 else f"{r.address}-{r.address + r.count - 1}"
                words = r.word_order if r.count > 1 else "-"
                out.append(
                    f"| {span} | {r.type} | {words} | {r.byte_order if r.type != 'bool' else '-'} | {r.scale:g} "
                    f"| {r.unit} | `{r.signal}` | {r.description} |"
                )
            out.append("")
    return "\n".join(out)


def render_address_spaces() -> str:
    out = []
    for space in ADDRESS_SPACES.values():
        node = f"nsu={NAMESPACE_URI};s=<FOLDER>.<name>"
        out.append(f"#### Address space `{space.name}`\n\n{space.description}; node ids `{node}`.\n")
        out.append("| variable | data type | unit | signal | meaning |")
        out.append("|---|---|---|---|---|")
        for v in space.variables:
            out.append(f"| `<FOLDER>.{v.name}` | {v.data_type} | {v.unit} | `{v.signal}` | {v.description} |")
        out.append("")
    return "\n".join(out)


def _default(value: object) -> str:
    if isinstance(value, BaseModel):
        return "`{" + ", ".join(f"{k}: {v:g}" for k, v in value.model_dump().items()) + "}`"
    if isinstance(value, list):
        return "`[]`"
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "`[" + ", ".join(f"{v:g}" for v in value) + "]`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value!r}`"


def render_saf_products() -> str:
    out = ["| product | kWh/t | electrode / paste kg/t |", "|---|---|---|"]
    out += [f"| `{p.value}` | {kwh:,.0f} | {kg:g} |" for p, (kwh, kg) in SAF_PRODUCT_DEFAULTS.items()]
    return "\n".join(out) + "\n"


def _parameters(model: type[BaseModel], heading: str) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    out = [f"#### {heading}\n\n{doc}\n", "| parameter | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        if name == "kind":
            continue
        default = "required" if field.is_required() else _default(field.default)
        out.append(f"| `{name}` | {default} | {field.description or ''} |")
    out.append("")
    return out


def render_equipment() -> str:
    out = []
    for model in EQUIPMENT_MODELS:
        kind = typing.get_args(model.model_fields["kind"].annotation)[0]
        out += _parameters(model, f"`kind: {kind}`")
    return "\n".join(out)


def render_loggers() -> str:
    out = _parameters(CemsLoggerSim, "`simulation.loggers[]`")
    out += _parameters(LoggerWindow, "`windows[]`")
    out += _parameters(LoggerFault, "`faults[]`")
    return "\n".join(out)


RENDERERS = {
    "register_maps": render_register_maps,
    "address_spaces": render_address_spaces,
    "equipment": render_equipment,
    "loggers": render_loggers,
    "saf_products": render_saf_products,
}


def regenerate(text: str) -> str:
    def block(m: re.Match[str]) -> str:
        return m.group(1) + RENDERERS[m.group("name")]().rstrip("\n") + "\n" + m.group(4)

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    fresh = regenerate(text)
    if args.check:
        if fresh != text:
            print(f"{args.file} is out of date: run python -m ferrogate.simulators.docs {args.file}", file=sys.stderr)
            return 1
        return 0
    args.file.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
