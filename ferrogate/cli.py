"""The `ferrogate` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import re
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ferrogate import apikey_cmd, cert_cmd, dbinit_cmd, probe_cmd, simulate_cmd
from ferrogate.gateway.config_loader import ConfigError, load_config
from ferrogate.gateway.redact import redact_handlers
from ferrogate.gateway.timeutil import parse_seconds
from ferrogate.plant_file import load_config_or_exit, load_or_exit


def duration(text: str) -> float:
    """'90', '90s', '15m', '6h', '2d' -> seconds."""
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferrogate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check-config", help="validate a plant file; prints OK or every error")
    check.add_argument("file", type=Path)

    demo = sub.add_parser("demo", help="the whole stack on simulators, API up (Ctrl-C to stop)")
    demo.add_argument("--plant", type=Path, default=Path("deploy/plants/demo.yaml"))
    demo.add_argument("--api-port", type=int, default=8080)
    demo.add_argument("--api-host", default="127.0.0.1", help="address the API listens on (0.0.0.0: all)")
    demo.add_argument("--data-dir", type=Path, default=Path(".ferrogate-demo"))
    demo.add_argument("--duration", type=duration, default=None, help="stop by itself after this long")
    demo.add_argument("--speed", type=positive, default=60.0, help="simulated time runs N x faster")
    demo.add_argument(
        "--history", type=duration, default=2 * 3600.0, help="start simulated time this far in the past (e.g. 6h)"
    )

    run = sub.add_parser("run", help="run gateway roles against the broker and database in the plant file")
    run.add_argument("--plant", type=Path, required=True)
    run.add_argument(
        "--role",
        default=None,
        help="roles separated by ',' or '-' (systemd instance names allow no commas): "
        "collect, ingest, energy, api, uplink (default collect,ingest,api); "
        "a group center file: ingest, api (default both)",
    )
    run.add_argument(
        "--worker-id",
        default=None,
        help="names this process's MQTT clients (default: the host name); several ingest workers on one box "
        "each need their own",
    )
    run.add_argument("--api-host", default="127.0.0.1")
    run.add_argument("--api-port", type=int, default=8080)
    dbinit_cmd.add_parser(sub)
    apikey_cmd.add_parser(sub)
    simulate_cmd.add_parser(sub)
    probe_cmd.add_parser(sub)
    cert_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format=log_format)
    redact_handlers(logging.getLogger(), log_format)  # no password or token in any line
    if not args.verbose:
        # the libraries log every request at INFO; our own modules say what matters
        for name in ("asyncua", "httpx", "pymodbus", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "db-init":
        return dbinit_cmd.run(args)
    if args.command == "api-key":
        return apikey_cmd.run(args)
    if args.command == "simulate":
        return simulate_cmd.run(args)
    if args.command == "probe":
        return probe_cmd.run(args)
    if args.command == "make-cert":
        return cert_cmd.run(args)
    commands = {"demo": _demo, "run": _run}
    try:
        return asyncio.run(_until_signalled(commands[args.command](args)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stopped", file=sys.stderr)
        return 0


async def _until_signalled(work: Coroutine[Any, Any, int]) -> int:
    """Run `work`; SIGINT (Ctrl-C) and SIGTERM (systemd) cancel it so its cleanup runs."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    return await work


def check_config(file: Path) -> int:
    try:
        load_config(file)
    except ConfigError as exc:
        print(f"{len(exc.problems)} error(s) in {file}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"OK {file}")
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from ferrogate.gateway.demo import Demo, DemoOptions

    plant = load_or_exit(args.plant)
    options = DemoOptions(
        args.data_dir.resolve(), args.api_port, args.speed, args.history, args.duration, api_host=args.api_host
    )
    demo = Demo(plant, options)
    try:
        await demo.start()
        print("ferrogate demo running:\n  " + "\n  ".join(demo.messages), flush=True)
        print("Ctrl-C to stop." if args.duration is None else f"stopping after {args.duration:.0f} s.", flush=True)
        await demo.run()
    finally:
        await demo.stop()
    return 0


def parse_roles(text: str) -> tuple[str, ...]:
    """`collect,ingest` on the command line, `collect-ingest` as a systemd instance name."""
    return tuple(r.strip() for r in re.split(r"[,-]", text) if r.strip())


async def _run(args: argparse.Namespace) -> int:
    from ferrogate.gateway.center_config import CenterFile
    from ferrogate.gateway.runtime import Gateway, RoleConfigError, RoleTasks

    config = load_config_or_exit(args.plant)
    try:
        gateway: RoleTasks
        if isinstance(config, CenterFile):  # a group center: ingest and the group API (docs/group.md)
            # imported only here: a plant gateway's roles load their own modules (gateway/runtime.py)
            from ferrogate.gateway.center_runtime import CENTER_ROLES, Center

            roles = parse_roles(args.role) if args.role else CENTER_ROLES
            gateway = Center(config, roles, args.api_host, args.api_port, gateway_id=args.worker_id)
        else:
            roles = parse_roles(args.role or "collect,ingest,api")
            gateway = Gateway(
                config, roles, args.api_host, args.api_port, gateway_id=args.worker_id, plant_file=args.plant
            )
    except RoleConfigError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 1
    await gateway.start()
    # what start-up built (imports, the plant model, clients) lives as long as the process: moved
    # out of the cyclic GC's sight, a full collection scans only what the scans allocate, so its
    # pause cannot make a scan round late
    gc.collect()
    gc.freeze()
    try:
        await gateway.wait()
    finally:
        await gateway.stop()
    return 0
