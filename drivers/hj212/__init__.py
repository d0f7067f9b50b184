"""HJ 212 (污染物在线监控(监测)系统数据传输标准): frames from CEMS data loggers in, and out (README.md)."""
