"""Request planning: coalesce nearby points of one table into as few reads as possible (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ferrogate.drivers.modbus.config import ModbusPoint, ModbusTable
from ferrogate.drivers.modbus.decode import BlockDecoder, PointDecoder, block_decoder, decoder_for

MAX_REGISTERS_PER_READ = 125  # Modbus application protocol limit for FC3/FC4
MAX_BITS_PER_READ = 2000  # ... and for FC1/FC2


@dataclass
class ReadRequest:
    table: ModbusTable
    start: int
    count: int
    decoders: list[PointDecoder] = field(default_factory=list)
    block: BlockDecoder | None = None  # all decoders at once (register tables)

    def describe(self) -> str:
        """e.g. 'holding 0-7 (3 points)': what the probe command and the golden cases show."""
        return f"{self.table.value} {self.start}-{self.start + self.count - 1} ({len(self.decoders)} points)"


def plan_requests(
    points: list[ModbusPoint], max_gap: int, max_count: int = MAX_REGISTERS_PER_READ
) -> list[ReadRequest]:
    """Group points by table and address so that each read spans at most `max_count` registers
    (2000 bits for coils and discrete inputs) and skips at most `max_gap` unused addresses
    between two points. Points may overlap (e.g. several bit fields of one register)."""
    requests: list[ReadRequest] = []
    for table in ModbusTable:
        limit = MAX_BITS_PER_READ if table.is_bits else max_count
        group = sorted((p for p in points if p.table is table), key=lambda p: p.address)
        current: list[ModbusPoint] = []
        start = end = 0
        for p in group:
            p_end = p.address + p.type.registers
            if current and (p.address - end > max_gap or max(end, p_end) - start > limit):
                requests.append(_request(table, start, end, current))
                current = []
            if not current:
                start, end = p.address, p_end
            current.append(p)
            end = max(end, p_end)
        if current:
            requests.append(_request(table, start, end, current))
    return requests


def _request(table: ModbusTable, start: int, end: int, points: list[ModbusPoint]) -> ReadRequest:
    decoders = [decoder_for(p, start) for p in points]
    return ReadRequest(table, start, end - start, decoders, None if table.is_bits else block_decoder(decoders))
