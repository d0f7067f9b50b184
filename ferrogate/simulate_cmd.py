"""`ferrogate simulate`: the plant file's simulators alone (Modbus TCP and OPC UA servers on simulated
time, faults, ground-truth ledger), for testing a gateway or commissioning against them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.systemd_notify import notify
from ferrogate.gateway.timeutil import iso_utc
from ferrogate.plant_file import load_or_exit


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ferrogate.cli import duration, positive

    p = sub.add_parser("simulate", help="run the plant file's simulators alone and print their endpoints")
    p.add_argument("--plant", type=Path, default=Path("deploy/plants/demo.yaml"))
    p.add_argument("--speed", type=positive, default=60.0, help="simulated time runs N x faster until it is now")
    p.add_argument("--history", type=duration, default=3 * 3600.0, help="start this far in the past (e.g. 6h)")
    p.add_argument("--truth", type=Path, default=None, help="write the ground-truth ledger here (JSON lines)")
    p.add_argument("--duration", type=duration, default=None, help="stop by itself after this long (wall time)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="add a fault to the script, e.g. device=eaf1_meter,fault=exception,code=6,at=10m,duration=2m "
        "(list values joined with +, e.g. signals=power_kw+energy_import_kwh)",
    )


def parse_fault(text: str) -> dict[str, Any]:
    """'device=x,fault=freeze,signals=a+b,at=10m' -> a mapping for the fault model."""
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not KEY=VALUE")
        out[key.strip()] = value.split("+") if key.strip() == "signals" else _number_or_text(value.strip())
    return out


def _number_or_text(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def with_faults(plant: PlantFile, texts: list[str]) -> PlantFile:
    """The plant with --fault entries appended to its fault script; ValueError names what is wrong."""
    from ferrogate.simulators.faults import FAULT_ADAPTER

    sim = plant.simulation
    if sim is None:
        raise ValueError("the plant file has no 'simulation' section")
    faults = list(sim.faults)
    for text in texts:
        try:
            faults.append(FAULT_ADAPTER.validate_python(parse_fault(text)))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"--fault {text!r}: {exc}") from exc
    sim = sim.model_copy(update={"faults": faults})
    problems = [msg for loc, msg in sim.reference_errors(plant.devices) if loc[1] == "faults"]
    if problems:
        raise ValueError("--fault: " + "; ".join(problems))
    return plant.model_copy(update={"simulation": sim})


def run(args: argparse.Namespace) -> int:
    from ferrogate.cli import _until_signalled

    plant = load_or_exit(args.plant)
    try:
        plant = with_faults(plant, args.fault)
    except ValueError as exc:
        print(f"cannot simulate {args.plant}: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_until_signalled(_simulate(plant, args)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stopped", file=sys.stderr)
        return 0


async def _simulate(plant: PlantFile, args: argparse.Namespace) -> int:
    from ferrogate.gateway.demo import default_demo_secrets
    from ferrogate.simulators.plant import SimulatedPlant

    default_demo_secrets()  # before the simulated loggers read their PW
    sim = SimulatedPlant(plant, plant.simulation, speed=args.speed, history_s=args.history, truth=args.truth)
    try:
        await sim.start()
        assert plant.simulation is not None
        start = iso_utc(sim.t0 * 1_000_000_000)
        lines = [
            f"ferrogate simulate running: {args.plant} (seed {plant.simulation.seed}), simulated time from {start}, "
            f"{args.speed:g} x until it reaches the wall clock",
            *sim.endpoints(),
        ]
        if args.truth is not None:
            lines.append(f"ground truth: {args.truth}")
        for fault in plant.simulation.faults:
            lines.append(f"fault script: {fault.fault} on {fault.device} at {fault.at:g} s ({fault.clock})")
        print("\n  ".join(lines), flush=True)
        notify("READY=1")  # every server is listening: `systemctl start ferrogate-simulator` returns
        print("Ctrl-C to stop." if args.duration is None else f"stopping after {args.duration:g} s.", flush=True)
        if args.duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(args.duration)
    finally:
        await sim.stop()
        print(f"simulated until {iso_utc(int(sim.engine.now * 1e9))}; {len(sim.truth)} ledger lines", flush=True)
    return 0
