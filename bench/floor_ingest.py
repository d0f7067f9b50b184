"""The featureless ingest floor: paho-mqtt -> line protocol -> InfluxDB's /write, nothing else.

    python -m bench.floor_ingest CONFIG.json

CONFIG: {"broker_port", "topic_root", "influx_port", "database", "batch_size"}. Subscribes to
`{topic_root}/#` (QoS 1, acknowledged on receipt: no durability), turns every ferrogate/2 telemetry
message into lines (no escaping, no quality, no reasons) and POSTs them in batches of `batch_size`
lines (and whatever waited a second) over one keep-alive connection.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt


def main(config: dict[str, Any]) -> None:
    database, batch_size = config["database"], config["batch_size"]
    http_conn = http.client.HTTPConnection("127.0.0.1", config["influx_port"], timeout=30)
    lines: list[str] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal lines, last_flush
        if lines:
            http_conn.request("POST", f"/write?db={database}", "\n".join(lines).encode())
            http_conn.getresponse().read()
            lines = []
        last_flush = time.monotonic()

    def on_message(client, userdata, message) -> None:  # paho's callback signature
        try:
            doc = orjson.loads(message.payload)
            series = f"reading,site={doc['site']},device={doc['device']},point="
            t = doc["t"]
            for point, unit, value in zip(doc["p"], doc["u"], doc["v"], strict=True):
                if value is not None:
                    lines.append(f'{series}{point},unit={unit} value={value!r},quality="good" {t}')
        except (ValueError, KeyError, TypeError):
            return  # the probe, and anything that is not a batch
        if len(lines) >= batch_size:
            flush()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"floor-ingest-{time.time_ns()}")
    client.on_message = on_message
    client.connect("127.0.0.1", config["broker_port"])
    client.subscribe(f"{config['topic_root']}/#", qos=1)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    while running:
        client.loop(timeout=0.2)
        if time.monotonic() - last_flush >= 1.0:
            flush()
    client.disconnect()


if __name__ == "__main__":
    main(json.loads(Path(sys.argv[1]).read_text()))
