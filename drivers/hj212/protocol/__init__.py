"""The HJ 212 protocol itself, without the driver: CRC, frames, data segment, CP, code tables,
split packets, replies and a logger-side client. Pure codec plus one TCP client; the simulated CEMS
logger and the uplink use it as the other simulators use pymodbus and asyncua."""
