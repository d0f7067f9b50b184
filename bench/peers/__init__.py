"""The gateways users would pick instead, measured beside ferrogate and the floor (issue 15 item 7):
Node-RED with node-red-contrib-modbus (bench/peers/node_red.py) and ThingsBoard IoT Gateway
(bench/peers/thingsboard.py). Each is installed on demand (`python -m bench --peers`) into a cache
outside the repo, at pinned versions; one that cannot be installed is skipped with its reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.modbus_e2e import Contender
from bench.peers import node_red, thingsboard
from bench.peers.toolchain import Unavailable

# name -> (install(allow) -> home, contender(home), pinned versions)
PEERS: dict[str, tuple[Callable[[bool], Path], Callable[[Path], Contender], Callable[[], dict[str, str]]]] = {
    node_red.NodeRed.name: (node_red.install, node_red.NodeRed, node_red.versions),
    thingsboard.ThingsBoardGateway.name: (thingsboard.install, thingsboard.ThingsBoardGateway, thingsboard.versions),
}


def load(install: bool = True) -> tuple[list[Contender], dict[str, str]]:
    """The peers ready to run, and for each one that is not, why (installing them if `install`)."""
    ready: list[Contender] = []
    skipped: dict[str, str] = {}
    for name, (setup, contender, _) in PEERS.items():
        try:
            ready.append(contender(setup(install)))
        except Unavailable as exc:
            skipped[name] = str(exc)
    return ready, skipped


def versions() -> dict[str, dict[str, str]]:
    return {name: pinned() for name, (_, _, pinned) in PEERS.items()}
