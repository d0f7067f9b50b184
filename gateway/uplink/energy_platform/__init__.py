"""The energy online-monitoring uplink (重点用能单位能耗在线监测系统): 15-minute, daily and monthly
indicators from the energy books, as JSON over HTTPS, through a disk spool (docs/energy-platform.md)."""
