"""The uplink role: the plant's minute, hourly and daily data sent to environmental platforms as an
HJ 212 client, through a disk spool (docs/hj212.md "Uplink")."""
