"""`ferrogate probe` for an HJ 212 device: listen where the gateway would (the device's
listen_host:listen_port), wait for the logger's next upload, and show everything decoded from it
(header, every CP field and factor with its flag) and the readings of the configured points. The
gateway must not be listening on that port meanwhile. Frames refused on the way (wrong PW, unknown
MN, bad CRC...) are listed with their reason."""

from __future__ import annotations

import asyncio
import time

from ferrogate.drivers.hj212.config import Hj212Device
from ferrogate.drivers.hj212.driver import account, point_map
from ferrogate.drivers.hj212.protocol.codes import COMMAND_CODES, FLUE_GAS_FACTORS
from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server, ServerLimits
from ferrogate.gateway.timeutil import iso_utc
from ferrogate.probe_cmd import ProbeResult


def describe_hj212(device: Hj212Device) -> str:
    return f"hj212 listening on {device.listen_host}:{device.listen_port} for MN {device.mn}"


def decoded_lines(message: Message) -> list[str]:
    s = message.segment
    command = COMMAND_CODES.get(s.cn)
    version = {1: "HJ 212-2017", 2: "HJ 212-2025"}.get(s.version, f"version {s.version}")
    joined = f", {message.packets} packets joined" if message.packets > 1 else ""
    lines = [
        f"QN={s.qn} ST={s.st} CN={s.cn} ({command.name if command else 'unknown command'}) PW={s.pw} MN={s.mn} "
        f"Flag={s.flag} ({version}, {'reply wanted' if s.wants_ack else 'no reply'}{joined})"
    ]
    if message.data_time_ns is not None:
        lines.append(f"DataTime={message.cp.fields.get('DataTime')} = {iso_utc(message.data_time_ns)}")
    lines += [f"{k}={v}" for k, v in message.cp.fields.items() if k != "DataTime"]
    for code, values in message.cp.factors.items():
        factor = FLUE_GAS_FACTORS.get(code)
        name = f" ({factor.name}, {factor.unit})" if factor else ""
        lines.append(f"{code}{name}: " + " ".join(f"{k}={v}" for k, v in values.items()))
    return lines


async def probe_hj212(device: Hj212Device, site_zone: str, wait_s: float) -> ProbeResult:
    result = ProbeResult(device.id, device.protocol, describe_hj212(device))
    got: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    def on_message(logger: LoggerAccount, message: Message) -> None:
        if not got.done():
            got.set_result(message)

    server = Hj212Server(
        {device.mn: account(device, site_zone)}, on_message, ServerLimits(max_segment=device.max_segment)
    )
    started = time.perf_counter()
    try:
        await server.start(device.listen_host, device.listen_port)
    except OSError as exc:
        result.error = f"cannot listen on {device.listen_host}:{device.listen_port} (is the gateway running?): {exc}"
        return result
    try:
        message = await asyncio.wait_for(got, wait_s)
    except TimeoutError:
        result.error = f"no upload from MN {device.mn} within {wait_s:g} s"
        return result
    finally:
        result.connect_ms = (time.perf_counter() - started) * 1000
        result.refused = [f"{code}: {n}" for code, n in sorted(server.stats.errors.items())]
        result.requests = server.stats.frames
        await server.stop()
    result.connected = True
    result.decoded = decoded_lines(message)
    result.readings = point_map(device).readings(message)
    return result
