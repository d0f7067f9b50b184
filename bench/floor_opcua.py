"""The OPC UA floor: what the same libraries do with no features at all.

    python -m bench.floor_opcua CONFIG.json

asyncua (a client per server) feeding paho-mqtt: in `subscribe` mode a subscription at the
publishing interval with asyncua's high-level handler (`datachange_notification` per change), in
`poll` mode one Read of every node per second. Once a second each server's values go out as one
JSON array, QoS 1, on `floor/<server>`. No spool, no quality, no time stamps, no reconnects.

CONFIG: {"broker_port", "interval_s", "mode": "subscribe"|"poll", "timeout_s",
"servers": [{"endpoint", "nodes": [node id, ...]}, ...]}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import paho.mqtt.client as mqtt
from asyncua import Client, ua


class Collect:
    """asyncua's subscription handler: keeps the changed values until the next publish."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def datachange_notification(self, node, val, data) -> None:  # asyncua's handler signature
        self.values.append(val)

    def status_change_notification(self, status) -> None:
        pass


async def _server(index: int, server: dict, config: dict, broker: mqtt.Client) -> None:
    timeout = config["timeout_s"]
    client = Client(server["endpoint"], timeout=timeout, watchdog_intervall=timeout)
    await client.connect()
    namespaces = await client.get_namespace_array()
    nodes = []
    for text in server["nodes"]:
        node_id = ua.NodeId.from_string(text)
        uri = getattr(node_id, "NamespaceUri", None)
        if uri:
            node_id = ua.NodeId(node_id.Identifier, namespaces.index(uri), node_id.NodeIdType)
        nodes.append(client.get_node(node_id))
    topic = f"floor/s{index}"
    interval = config["interval_s"]
    if config["mode"] == "subscribe":
        handler = Collect()
        sub = await client.create_subscription(interval * 1000, handler)
        await sub.subscribe_data_change(nodes, queuesize=1)
    while True:
        await asyncio.sleep(interval - time.time() % interval)
        if config["mode"] == "subscribe":
            values, handler.values = handler.values, []
        else:
            values = [dv.Value.Value for dv in await client.read_attributes(nodes, ua.AttributeIds.Value)]
        if values:
            broker.publish(topic, json.dumps(values), qos=1)


async def run(config: dict) -> None:
    broker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="floor-opcua")
    broker.connect("127.0.0.1", config["broker_port"])
    broker.loop_start()
    async with asyncio.TaskGroup() as tg:
        for index, server in enumerate(config["servers"]):
            tg.create_task(_server(index, server, config, broker))


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
