"""The demo plant's simulators read with plain protocol clients (pymodbus AsyncModbusTcpClient, asyncua
Client): every register and node as docs/simulators.md documents it, exception answers, subscriptions,
energy against integrated power, tap instants and the ledger against the served counters, and a
uint32 counter that rolls over. The plant runs on a ManualClock, so each read is at a chosen second."""

from __future__ import annotations

import math
import re
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from ferrogate.gateway.timeutil import datetime_to_ns
from ferrogate.simulators.clock import ManualClock
from ferrogate.simulators.opcua_server import UNECE_CODES, coerce, unece_unit_id
from ferrogate.simulators.plant import SimulatedPlant
from ferrogate.simulators.registers import Register, served_value
from tests.conftest import ROOT, on_free_ports
from tests.simulator_plants import T0, demo_doc, load, manual_plant, small_doc
from tests.waiting import eventually

DOCS = ROOT / "docs" / "simulators.md"
FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}
FORMATS |= {"float32": "f", "float64": "d"}
FUNCTION = {
    "holding registers": "holding",
    "input registers": "input",
    "coils": "coil",
    "discrete inputs": "discrete_input",
}


@dataclass(frozen=True)
class DocRow:
    """One row of a register-map table in docs/simulators.md."""

    table: str
    address: int
    type: str
    word_order: str
    byte_order: str
    scale: float
    signal: str


def documented_maps() -> dict[str, list[DocRow]]:
    maps: dict[str, list[DocRow]] = {}
    name = table = ""
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"#### Map `(\w+)`", line):
            name = m.group(1)
            maps[name] = []
        elif m := re.match(r"(holding registers|input registers|coils|discrete inputs) \(FC\d\):", line):
            table = FUNCTION[m.group(1)]
        elif name and re.match(r"\| \d", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            maps[name].append(
                DocRow(
                    table,
                    int(cells[0].split("-")[0]),
                    cells[1],
                    cells[2],
                    cells[3],
                    float(cells[4]),
                    cells[6].strip("`"),
                )
            )
        elif line.startswith("#### Address space"):
            name = ""
    return maps


def documented_spaces() -> dict[str, list[tuple[str, str, str]]]:
    """address space -> (variable name, data type, unit)."""
    spaces: dict[str, list[tuple[str, str, str]]] = {}
    name = ""
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"#### Address space `(\w+)`", line):
            name = m.group(1)
            spaces[name] = []
        elif name and line.startswith("| `<FOLDER>."):
            cells = [c.strip() for c in line.strip("|").split("|")]
            spaces[name].append((cells[0].strip("`").split(".", 1)[1], cells[1], cells[2]))
    return spaces


def seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def decode(row: DocRow, words: list[int]) -> float:
    """What a client that follows the documented row makes of the words (independent of the encoder)."""
    if row.byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if row.word_order == "little":
        words = words[::-1]
    raw = struct.unpack(">" + FORMATS[row.type], struct.pack(f">{len(words)}H", *words))[0]
    return raw * row.scale


def twin_truth(sim: SimulatedPlant, until: float) -> list[dict]:
    """The ledger of the same plant run without servers: it tells in advance when the served plant taps."""
    clock = ManualClock(sim.t0)
    plant = load(on_free_ports(demo_doc()))
    twin = SimulatedPlant(plant, plant.simulation, clock=clock)
    clock.set(until)
    twin.advance()
    return twin.truth


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[SimulatedPlant, ManualClock]]:
    plant = load(on_free_ports(demo_doc()))
    sim, clock = manual_plant(plant, truth=tmp_path_factory.mktemp("truth") / "truth.jsonl")
    await sim.start()
    yield sim, clock
    await sim.stop()


async def modbus_client(sim: SimulatedPlant, device: str) -> AsyncModbusTcpClient:
    dev = sim.modbus[device]
    client = AsyncModbusTcpClient(dev.host, port=dev.port, timeout=5)
    assert await client.connect()
    return client


async def read(client: AsyncModbusTcpClient, table: str, address: int, count: int, unit: int = 1):
    reader = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete_input": client.read_discrete_inputs,
    }[table]
    return await reader(address, count=count, device_id=unit)


def words_of(row: DocRow) -> int:
    return {"16": 1, "32": 2, "64": 4}.get(row.type[-2:], 1)


async def test_every_modbus_register_reads_as_documented(demo: tuple[SimulatedPlant, ManualClock]) -> None:
    sim, clock = demo
    clock.set(max(clock.t, T0 + 1800.5))  # mid-heat, between two whole seconds
    documented = documented_maps()
    checked = 0
    for device_id, dev in sim.modbus.items():
        rows = documented[dev.map.name]
        assert {(r.table, r.address, r.type, r.signal) for r in rows} == {
            (reg.table, reg.address, reg.type, reg.signal) for reg in dev.map.registers
        }, f"docs/simulators.md and map {dev.map.name} disagree"
        client = await modbus_client(sim, device_id)
        try:
            for row in rows:
                rr = await read(client, row.table, row.address, words_of(row))
                assert not rr.isError(), (device_id, row)
                truth = sim.engine.signal(dev.equipment, row.signal)
                if row.type == "bool":
                    assert rr.bits[0] == bool(truth), (device_id, row)
                    continue
                expected = served_value(Register(0, row.type, row.signal, "", scale=row.scale), truth)
                assert decode(row, rr.registers) == pytest.approx(expected, rel=1e-6), (device_id, row)
                # what the simulator logged as served is what the client decoded
                assert dev.served[-1][row.signal] == pytest.approx(expected, rel=1e-6)
                checked += 1
            for table in ("holding", "input", "coil", "discrete_input"):  # one past the map: exception 2
                beyond = await read(client, table, dev.map.table_size(table), 1)
                assert beyond.isError() and beyond.exception_code == 2, (device_id, table)
            mapped_holding = dev.map.in_table("holding")
            if mapped_holding:
                written = await client.write_register(mapped_holding[0].address, 1, device_id=1)
                assert written.isError() and written.exception_code == 1, "simulators are read-only"
        finally:
            client.close()
    assert checked > 50


async def test_little_endian_words_and_scaled_integers_differ_from_big_endian(
    demo: tuple[SimulatedPlant, ManualClock],
) -> None:
    sim, _ = demo
    client = await modbus_client(sim, "eaf2_meter")
    try:
        rr = await read(client, "holding", 0, 2)
    finally:
        client.close()
    truth = sim.engine.signal("eaf2", "energy_import_kwh")
    cdab = DocRow("holding", 0, "uint32", "little", "big", 0.1, "energy_import_kwh")
    assert decode(cdab, rr.registers) == pytest.approx(math.floor(truth * 10) / 10, abs=0.051)
    assert decode(DocRow(**{**cdab.__dict__, "word_order": "big"}), rr.registers) != pytest.approx(truth, rel=0.01)


async def test_every_opcua_node_is_browsable_typed_with_units_and_source_time(
    demo: tuple[SimulatedPlant, ManualClock],
) -> None:
    sim, clock = demo
    clock.set(max(clock.t, T0 + 2000))
    await sim.step()
    documented = documented_spaces()
    stamp_ns = int(clock.t * 1e9)
    for device_id, dev in sim.opcua.items():
        async with Client(dev.endpoint, timeout=10) as client:
            idx = await client.get_namespace_index("urn:ferrogate:simulator")
            folders = {(await n.read_browse_name()).Name: n for n in await client.nodes.objects.get_children()}
            for folder in dev.folders:
                node = folders[folder.name]
                assert await node.read_node_class() == ua.NodeClass.Object
                children = {(await c.read_browse_name()).Name: c for c in await node.get_children()}
                doc = documented[folder.space.name]
                assert set(children) == {name for name, _, _ in doc}
                for name, data_type, unit in doc:
                    var = children[name]
                    assert var.nodeid == ua.NodeId(f"{folder.name}.{name}", idx)
                    assert (await var.read_data_type_as_variant_type()).name == data_type
                    units = await var.get_child(f"{idx}:EngineeringUnits")
                    info = await units.read_value()
                    assert info.UnitId == unece_unit_id(UNECE_CODES[unit]) and info.DisplayName.Text == unit
                    dv = (await client.read_attributes([var], ua.AttributeIds.Value))[0]
                    assert dv.StatusCode.is_good()
                    assert datetime_to_ns(dv.SourceTimestamp) == stamp_ns
                    signal = next(v.signal for v in folder.space.variables if v.name == name)
                    truth = coerce(sim.engine.signal(folder.equipment, signal), data_type)
                    expected = pytest.approx(truth, rel=1e-6) if data_type == "Float" else truth
                    assert dv.Value.Value == expected, (device_id, name)


async def test_subscriptions_notify_each_publish(demo: tuple[SimulatedPlant, ManualClock]) -> None:
    sim, clock = demo
    dev = sim.opcua["saf1_dcs"]
    received: list[ua.DataValue] = []

    class Handler:
        def datachange_notification(self, node, val, data) -> None:
            received.append(data.monitored_item.Value)

    async with Client(dev.endpoint, timeout=10) as client:
        idx = await client.get_namespace_index("urn:ferrogate:simulator")
        sub = await client.create_subscription(50, Handler())
        await sub.subscribe_data_change([client.get_node(ua.NodeId("SAF1.P_kW", idx))])
        target = int(clock.t) + 37
        clock.set(target)
        await sim.step()

        async def arrived() -> bool:
            return any(datetime_to_ns(v.SourceTimestamp) == target * 1_000_000_000 for v in received)

        await eventually(arrived, "a data change stamped with the new simulated time", within_s=20)
        value = next(v for v in received if datetime_to_ns(v.SourceTimestamp) == target * 1_000_000_000)
        assert value.Value.Value == sim.engine.signal("saf1", "power_kw")
        await sub.delete()


async def test_served_energy_matches_integrated_power_and_the_ledger(demo: tuple[SimulatedPlant, ManualClock]) -> None:
    """Read like a gateway every 5 simulated seconds for 2 h: trapezoid of the served power within 0.5 %
    of the served counter; at each tap, counter, weight and tap time change at the ledger's end second,
    and the ledger's energy is the served counter delta (one count for uint32 kWh; exact for Double)."""
    sim, clock = demo
    start = (int(clock.t) // 3600 + 1) * 3600
    end = start + 2 * 3600
    taps = [seconds(h["end"]) for h in twin_truth(sim, end) if h["asset"] == "eaf1" and start < seconds(h["end"])]
    times = sorted(set(range(start, end + 1, 5)) | {t + d for t in taps for d in (-1, 0)})
    modbus = await modbus_client(sim, "eaf1_meter")
    samples: dict[str, list[tuple[int, float, float]]] = {"eaf1": [], "saf1": []}  # (t, kW, kWh)
    taps_seen: dict[int, tuple[float, float, float]] = {}  # t -> served (taps, tap time, energy)
    async with Client(sim.opcua["saf1_dcs"].endpoint, timeout=10) as opc:
        idx = await opc.get_namespace_index("urn:ferrogate:simulator")
        saf_nodes = [opc.get_node(ua.NodeId(f"SAF1.{n}", idx)) for n in ("P_kW", "E_import_kWh", "TapCount")]
        try:
            for t in times:
                clock.set(t)
                await sim.step()
                rr = await read(modbus, "holding", 0, 20)
                regs = rr.registers
                served = {
                    "energy": decode(DocRow("holding", 0, "uint32", "big", "big", 1, ""), regs[0:2]),
                    "power": decode(DocRow("holding", 2, "float32", "big", "big", 1, ""), regs[2:4]),
                    "clock": decode(DocRow("holding", 4, "uint64", "big", "big", 1, ""), regs[4:8]),
                    "taps": regs[15],
                    "tap_time": decode(DocRow("holding", 18, "uint32", "big", "big", 1, ""), regs[18:20]),
                }
                assert served["clock"] == t * 1000
                samples["eaf1"].append((t, served["power"], served["energy"]))
                taps_seen[t] = (served["taps"], served["tap_time"], served["energy"])
                values = await opc.read_attributes(saf_nodes, ua.AttributeIds.Value)
                assert all(datetime_to_ns(v.SourceTimestamp) == t * 1_000_000_000 for v in values)
                samples["saf1"].append((t, values[0].Value.Value, values[1].Value.Value))
        finally:
            modbus.close()
    for asset, points in samples.items():
        integrated = sum((p0 + p1) / 2 * (t1 - t0) / 3600 for (t0, p0, _), (t1, p1, _) in pairwise(points))
        counted = points[-1][2] - points[0][2]
        assert integrated == pytest.approx(counted, rel=0.005), asset

    heats = [h for h in sim.truth if h["asset"] == "eaf1" and start < seconds(h["end"]) <= end]
    assert [seconds(h["end"]) for h in heats] == taps, "the served plant tapped when its twin did"
    whole = 0
    for heat in heats:
        tap = seconds(heat["end"])
        assert taps_seen[tap][0] == taps_seen[tap - 1][0] + 1, "the tap counter steps at the tap second"
        assert taps_seen[tap][1] == tap and taps_seen[tap - 1][1] < tap, "the tap time is the ledger's end"
        if seconds(heat["start"]) in taps_seen:  # a whole heat in the window: ledger = served counter delta
            delta = taps_seen[tap][2] - taps_seen[seconds(heat["start"])][2]
            assert abs(delta - heat["energy_kwh"]) < 1.0, "uint32 kWh truncates by less than one count"
            whole += 1
    assert whole >= 1


async def test_tap_instant_on_opcua_and_exact_ledger_energy(demo: tuple[SimulatedPlant, ManualClock]) -> None:
    """Jump from tap to tap of SAF1 (known from a server-less twin with the same seed): at the ledger's
    end second the tap counter steps, weight and tap time change, and the Double counter delta equals
    the ledger's energy exactly."""
    sim, clock = demo
    truth = twin_truth(sim, clock.t + 8 * 3600)
    taps = [line for line in truth if line["asset"] == "saf1" and seconds(line["end"]) > clock.t + 1]
    assert len(taps) >= 2
    async with Client(sim.opcua["saf1_dcs"].endpoint, timeout=10) as opc:
        idx = await opc.get_namespace_index("urn:ferrogate:simulator")
        nodes = [
            opc.get_node(ua.NodeId(f"SAF1.{n}", idx))
            for n in ("TapCount", "LastTapWeight_t", "LastTapTime", "E_import_kWh")
        ]

        async def at(t: int) -> list:
            clock.set(t)
            await sim.step()
            return [dv.Value.Value for dv in await opc.read_attributes(nodes, ua.AttributeIds.Value)]

        energy_at_tap = {}
        for tap in taps[:2]:
            end = seconds(tap["end"])
            count_before, _, time_before, _ = await at(end - 1)
            count, weight, tap_time, energy = await at(end)
            assert (count, weight, tap_time) == (count_before + 1, tap["tonnes"], end * 1000)
            assert time_before < end * 1000
            energy_at_tap[end] = energy
        second = taps[1]
        assert energy_at_tap[seconds(second["end"])] - energy_at_tap[seconds(second["start"])] == second["energy_kwh"]
    served_lines = [line for line in sim.truth if line["id"] in {t["id"] for t in taps[:2]}]
    assert served_lines == taps[:2], "the served plant wrote the same ledger lines as its twin"


async def test_uint32_counter_rolls_over(tmp_path: Path) -> None:
    doc = on_free_ports(small_doc(eaf_start_kwh=2**32 - 3000))
    doc["devices"] = doc["devices"][:1]
    doc["simulation"]["devices"] = doc["simulation"]["devices"][:1]
    doc["simulation"]["equipment"] = doc["simulation"]["equipment"][:1]
    sim, clock = manual_plant(load(doc))
    await sim.start()
    client = await modbus_client(sim, "eaf_meter")
    try:
        seen = []
        for t in range(T0, T0 + 3600, 60):
            clock.set(t)
            rr = await read(client, "holding", 0, 2)
            seen.append(decode(DocRow("holding", 0, "uint32", "big", "big", 1, ""), rr.registers))
    finally:
        client.close()
        await sim.stop()
    wrap = next(i for i in range(1, len(seen)) if seen[i] < seen[i - 1])
    assert seen[wrap - 1] > 2**32 - 3000 and seen[wrap] < 80_000, "the register wrapped at 2^32"
    assert sim.engine.signal("eaf1", "energy_import_kwh") > 2**32, "the model's energy did not"


def test_endpoints_name_every_device() -> None:
    sim, _ = manual_plant(load(on_free_ports(demo_doc())))
    listed = sim.endpoints()
    for device_id in [*sim.modbus, *sim.opcua]:
        assert sum(line.startswith(f"{device_id}: ") for line in listed) == 1
    assert any("(folder SAF1: submerged_arc_furnace, folder TR_SAF1: transformer" in line for line in listed)


async def test_a_port_taken_before_the_start_is_moved_only_where_the_harness_chose_it() -> None:
    """free_port() chose the ports, another process bound two of them before the simulator: with
    move_taken_ports the Modbus and the OPC UA device listen elsewhere, the plant for the gateway says
    where, and plain clients read them there; without it (configured ports) the start fails."""
    plant = load(on_free_ports(small_doc()))
    meter, dcs = plant.device("eaf_meter"), plant.device("saf_dcs")
    dcs_port = int(dcs.endpoint.rsplit(":", 1)[1].split("/")[0])  # type: ignore[union-attr]
    with socket.create_server(("127.0.0.1", meter.port)), socket.create_server(("127.0.0.1", dcs_port)):  # type: ignore[union-attr]
        fixed = SimulatedPlant(plant, plant.simulation, clock=ManualClock(T0))
        with pytest.raises(RuntimeError, match="cannot listen"):
            await fixed.start()
        assert not fixed.moved
        sim, _ = manual_plant(plant)
        await sim.start()
        try:
            assert set(sim.moved) == {"eaf_meter", "saf_dcs"}
            bound = sim.bound(plant)
            assert bound.device("eaf_meter").port == sim.moved["eaf_meter"] != meter.port  # type: ignore[union-attr]
            endpoint = bound.device("saf_dcs").endpoint  # type: ignore[union-attr]
            assert endpoint == dcs.endpoint.replace(f":{dcs_port}/", f":{sim.moved['saf_dcs']}/")  # type: ignore[union-attr]
            client = AsyncModbusTcpClient("127.0.0.1", port=sim.moved["eaf_meter"], timeout=5)
            assert await client.connect()
            try:
                assert not (await read(client, "holding", 0, 2)).isError()
            finally:
                client.close()
            async with Client(endpoint, timeout=10) as opc:
                idx = await opc.get_namespace_index("urn:ferrogate:simulator")
                assert sim.opcua["saf_dcs"].node_ids() and isinstance(
                    await opc.get_node(ua.NodeId(sim.opcua["saf_dcs"].node_ids()[0], idx)).read_value(), float
                )
        finally:
            await sim.stop()
