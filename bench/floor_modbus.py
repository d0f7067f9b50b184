"""The featureless floor: what the same libraries cost without any of the gateway's features.

    python -m bench.floor_modbus CONFIG.json

asyncio + pymodbus (one client per port, units read one after the other on it) + paho-mqtt (its own
network thread); every `interval_s`, aligned to the wall clock, each device's planned reads are
decoded with struct and published as ONE JSON array of values to `{topic_root}/{device}` with QoS 1.
No spool, no quality, no time stamps, no reconnects, no metrics: a read that fails is skipped.

CONFIG: {"broker_port", "topic_root", "interval_s", "links": [{"port", "devices": [{"id", "unit",
         "requests": [{"start", "count", "points": [[offset, type, word_order]]}]}]}]}
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from pymodbus.client import AsyncModbusTcpClient

FORMATS = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i", "float32": ">f"}


def decoder(offset: int, type_: str, word_order: str) -> Any:
    unpack = struct.Struct(FORMATS[type_]).unpack_from
    if word_order == "little" and type_ in ("uint32", "int32", "float32"):
        swapped = struct.Struct(FORMATS[type_]).unpack

        def decode_swapped(buf: bytes) -> float:
            at = 2 * offset
            return swapped(buf[at + 2 : at + 4] + buf[at : at + 2])[0]

        return decode_swapped
    return lambda buf: unpack(buf, 2 * offset)[0]


async def poll_link(link: dict[str, Any], client: mqtt.Client, root: str, interval: float) -> None:
    modbus = AsyncModbusTcpClient("127.0.0.1", port=link["port"], timeout=2, retries=0)
    await modbus.connect()
    plans = [
        (
            f"{root}/{d['id']}",
            d["unit"],
            [(r["start"], r["count"], [decoder(*p) for p in r["points"]]) for r in d["requests"]],
        )
        for d in link["devices"]
    ]
    while True:
        await asyncio.sleep(interval - time.time() % interval)
        for topic, unit, reads in plans:
            values: list[float] = []
            try:
                for start, count, decoders in reads:
                    rr = await modbus.read_holding_registers(start, count=count, device_id=unit)
                    if rr.isError():
                        raise OSError(str(rr))
                    buf = struct.pack(f">{count}H", *rr.registers)
                    values.extend(d(buf) for d in decoders)
            except Exception:  # the floor has no features: a failed read is skipped
                if not modbus.connected:
                    await modbus.connect()
                continue
            # JSON has no NaN: a float32 that is not finite goes out as null
            payload = json.dumps([v if math.isfinite(v) else None for v in values], separators=(",", ":"))
            client.publish(topic, payload, qos=1)


async def main(config: dict[str, Any]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"floor-{time.time_ns()}")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", config["broker_port"])
    client.loop_start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [
        asyncio.create_task(poll_link(link, client, config["topic_root"], config["interval_s"]))
        for link in config["links"]
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
