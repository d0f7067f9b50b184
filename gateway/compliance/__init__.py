"""Compliance: what the books mean under a named standard and edition (limit grades, the carbon
market's month, EU CBAM, product footprints). Pure logic, no I/O (docs/compliance.md)."""
