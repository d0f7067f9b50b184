"""The data segment: `QN=...;ST=..;CN=....;PW=......;MN=...;Flag=n;[PNUM=n;PNO=n;]CP=&&...&&`.

Flag (HJ 212-2017 6.3.3): bit 0 `A` the sender wants an acknowledgement, bit 1 `D` the message is
split into packets (PNUM, PNO), bits 2-7 the standard's version: 1 = HJ 212-2017, 2 = HJ 212-2025
(second-hand, UNVERIFIED). So 4 = 2017 without ack, 5 = with ack, 6/7 = split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferrogate.drivers.hj212.protocol.errors import ErrorCode, Hj212Error

FLAG_ACK = 0x01
FLAG_SPLIT = 0x02
VERSION_2017 = 1
VERSION_2025 = 2
CP_OPEN = "CP=&&"
CP_CLOSE = "&&"
# field: the longest value accepted (the standard's sizes with room for loggers that stray a little)
_HEADER_FIELDS = {"QN": 20, "ST": 5, "CN": 7, "PW": 9, "MN": 27, "Flag": 3, "PNUM": 4, "PNO": 4}
_REQUIRED = ("ST", "CN", "PW", "MN")
_FORBIDDEN_IN_VALUES = frozenset(";,=&")


@dataclass(slots=True)
class DataSegment:
    st: str
    cn: str
    pw: str
    mn: str
    cp: str  # what is between CP=&& and the closing &&
    qn: str | None = None
    flag: int = 0
    pnum: int | None = None
    pno: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # header fields this codec does not know

    @property
    def wants_ack(self) -> bool:
        return bool(self.flag & FLAG_ACK)

    @property
    def is_split(self) -> bool:
        return self.pnum is not None

    @property
    def version(self) -> int:
        return self.flag >> 2


def parse_segment(text: str) -> DataSegment:
    cp_at = text.find(CP_OPEN)
    if cp_at < 0:
        raise Hj212Error(ErrorCode.BAD_SEGMENT, "no 'CP=&&' in the data segment")
    if not text.endswith(CP_CLOSE) or len(text) < cp_at + len(CP_OPEN) + len(CP_CLOSE):
        raise Hj212Error(ErrorCode.BAD_SEGMENT, "the data segment must end with CP's closing '&&'")
    fields: dict[str, str] = {}
    extra: dict[str, str] = {}
    for part in text[:cp_at].split(";"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise Hj212Error(ErrorCode.BAD_SEGMENT, f"header field {part[:40]!r} is not name=value")
        limit = _HEADER_FIELDS.get(name)
        if limit is None:
            extra[name] = value
            continue
        if name in fields:
            raise Hj212Error(ErrorCode.BAD_SEGMENT, f"{name} given twice")
        if not value or len(value) > limit or not value.isprintable() or _FORBIDDEN_IN_VALUES.intersection(value):
            raise Hj212Error(ErrorCode.BAD_SEGMENT, f"{name}={value[:40]!r}: empty, too long or not printable")
        fields[name] = value
    missing = [name for name in _REQUIRED if name not in fields]
    if missing:
        raise Hj212Error(ErrorCode.BAD_SEGMENT, f"missing {', '.join(missing)}")
    for name in ("ST", "CN"):
        if not _digits(fields[name]):
            raise Hj212Error(ErrorCode.BAD_SEGMENT, f"{name}={fields[name]!r} is not a number")
    qn = fields.get("QN")
    if qn is not None and not (_digits(qn) and 14 <= len(qn) <= 20):
        raise Hj212Error(ErrorCode.BAD_SEGMENT, f"QN={qn!r} is not YYYYMMDDhhmmsszzz")
    flag = _number(fields, "Flag", 0, 255)
    pnum, pno = fields.get("PNUM"), fields.get("PNO")
    split: tuple[int, int] | None = None
    if pnum is not None or pno is not None:
        n, i = _number(fields, "PNUM", 1, 9999), _number(fields, "PNO", 1, 9999)
        if i > n:
            raise Hj212Error(ErrorCode.BAD_SEGMENT, f"PNO {i} is greater than PNUM {n}")
        split = (n, i)
    return DataSegment(
        st=fields["ST"],
        cn=fields["CN"],
        pw=fields["PW"],
        mn=fields["MN"],
        cp=text[cp_at + len(CP_OPEN) : -len(CP_CLOSE)],
        qn=qn,
        flag=flag,
        pnum=split[0] if split else None,
        pno=split[1] if split else None,
        extra=extra,
    )


def _number(fields: dict[str, str], name: str, low: int, high: int) -> int:
    value = fields.get(name)
    if value is None:
        if name == "Flag":
            return 0
        raise Hj212Error(ErrorCode.BAD_SEGMENT, f"{name} missing (PNUM and PNO go together)")
    if not _digits(value) or not low <= int(value) <= high:
        raise Hj212Error(ErrorCode.BAD_SEGMENT, f"{name}={value!r} is not a number in {low}..{high}")
    return int(value)


def _digits(text: str) -> bool:
    """ASCII digits only (str.isdigit also takes '²' and other digits int() refuses)."""
    return text.isascii() and text.isdigit()


def build_segment(segment: DataSegment) -> str:
    """The text of a data segment, fields in the standard's order."""
    parts = []
    if segment.qn is not None:
        parts.append(f"QN={segment.qn}")
    parts += [f"ST={segment.st}", f"CN={segment.cn}", f"PW={segment.pw}", f"MN={segment.mn}", f"Flag={segment.flag}"]
    if segment.pnum is not None:
        parts += [f"PNUM={segment.pnum}", f"PNO={segment.pno}"]
    parts += [f"{k}={v}" for k, v in segment.extra.items()]
    return ";".join(parts) + f";{CP_OPEN}{segment.cp}{CP_CLOSE}"


def make_flag(version: int, ack: bool, split: bool = False) -> int:
    return (version << 2) | (FLAG_ACK if ack else 0) | (FLAG_SPLIT if split else 0)
