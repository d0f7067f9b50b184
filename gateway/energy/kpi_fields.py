"""The energy books' KPI fields by theme (docs/accounting.md §6): names only, so that a plant-file
section naming them (the uplink's figures) does not load the books with them (issue 15).
`wire` (their writer) and the API's and reports' readers take them from here."""

from __future__ import annotations

# KPI fields by theme (§6): what the API's KPI routes and the monthly report show
KPI_INTENSITY_FIELDS = (
    "tonnes_t",
    "electricity_kwh",
    "waste_heat_kwh",
    "net_electricity_kwh",
    "kwh_per_t",
    "comprehensive_kgce",
    "kgce_per_t",
)
# the plant as a whole has no tonnes: its energy figures are these
KPI_PLANT_ENERGY_FIELDS = (
    "consumption_kwh",
    "purchased_kwh",
    "waste_heat_kwh",
    "waste_heat_share_percent",
    "green_share_percent",
    "water_reuse_percent",
    "comprehensive_kgce",
)
KPI_CARBON_FIELDS = (
    "tco2_combustion",
    "tco2_process",
    "tco2_fixed_in_product",
    "tco2_direct",
    "tco2_indirect",
    "tco2_total",
    "tco2_per_t",
    "tco2_direct_per_t",
    "green_kwh",
    "tco2_indirect_market",
    "tco2_total_market",
    "tco2_per_t_market",
    "grid_tco2_per_mwh",
)
