"""Electricity cost: time-of-use tariffs, demand charges and efficiency surcharges (docs/cost.md)."""
