"""The command parameters CP (HJ 212-2017 6.3.3): `name=value` pairs, `,` between pairs of one item
(one factor), `;` between items. A name with a `-` is a factor code and a suffix (`a21026-Rtd`,
`a21026-Flag`); without one it is a field of the message (`DataTime`, `RtdInterval`, `QnRtn`...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ferrogate.drivers.hj212.protocol.errors import ErrorCode, Hj212Error


@dataclass(slots=True)
class CpData:
    fields: dict[str, str] = field(default_factory=dict)
    # factor code -> suffix -> value as sent, e.g. {"a21026": {"Rtd": "12.3", "Flag": "N"}}
    factors: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_cp(body: str) -> CpData:
    data = CpData()
    fields, factors = data.fields, data.factors
    if not body:
        return data
    for item in body.split(";"):
        if not item:
            continue  # a stray ';' (some loggers end CP with one)
        for pair in item.split(","):
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise Hj212Error(ErrorCode.BAD_CP, f"CP item {pair[:40]!r} is not name=value")
            code, dash, suffix = name.partition("-")
            if dash:
                if not code or not suffix:
                    raise Hj212Error(ErrorCode.BAD_CP, f"CP name {name[:40]!r} is not factor-suffix")
                factor = factors.get(code)
                if factor is None:
                    factor = factors[code] = {}
                factor[suffix] = value
            else:
                fields[name] = value
    return data


def build_cp(fields: Mapping[str, str], factors: Iterable[tuple[str, Mapping[str, str]]]) -> str:
    """`DataTime=...;a21026-Rtd=1.2,a21026-Flag=N;...` from fields and (factor code, suffix -> value)."""
    items = [f"{name}={value}" for name, value in fields.items()]
    items += [",".join(f"{code}-{suffix}={value}" for suffix, value in values.items()) for code, values in factors]
    return ";".join(items)


def join_cp(bodies: Iterable[str]) -> str:
    """The CP of a message split into packets: the packets' items in packet order, a message field
    that each packet repeats (`DataTime=...`) kept once."""
    items: list[str] = []
    fields: set[str] = set()
    for body in bodies:
        for item in body.split(";"):
            if not item:
                continue
            if "-" not in item.partition("=")[0] and "," not in item:
                if item in fields:
                    continue
                fields.add(item)
            items.append(item)
    return ";".join(items)
