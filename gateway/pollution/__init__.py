"""Pollutant accounting beside carbon: HJ 212 Appendix D statistics, emission masses, limits and
per-tonne KPIs (pure logic, no I/O; docs/hj212.md)."""
