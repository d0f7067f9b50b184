"""The whole plant file: the plant model (`config.PlantConfig`) plus the sections the layers above
it own, composed here so that no lower layer imports a higher one.

| section | owner |
|---|---|
| `site`, `mqtt`, `influxdb`, `devices`, `assets` | `gateway/config.py` (devices: the driver packages) |
| `simulation` | `simulators/config.py` |
| `accounting` | `gateway/energy/config.py`, resolved by `gateway/energy/model.py` |
| `compliance` | `gateway/compliance/config.py`, resolved by `gateway/compliance/model.py` |
| `cost` | `gateway/cost/config.py`, resolved by `gateway/cost/model.py` |
| `alarms` | `gateway/alarms.py` |
| `pollution` | `gateway/pollution/config.py` |
| `uplink` | `gateway/uplink/config.py`; energy platforms' mapping files: `gateway/uplink/energy_platform/mapping.py` |
| `api` | `api/config.py` |

Each owner checks its section against the plant model; `reference_errors` calls those checks in
the order a reader meets the sections. The checks that resolve a section into its runtime model
(the books, compliance, cost, the energy platforms' mappings) are imported only for a file that
has that section: a collect process of a plant without them never loads those modules (issue 15).
"""

from __future__ import annotations

from pydantic import Field

from ferrogate.api.config import ApiConfig
from ferrogate.gateway.alarms import AlarmsConfig
from ferrogate.gateway.compliance.config import ComplianceConfig
from ferrogate.gateway.config import Location, PlantConfig
from ferrogate.gateway.cost.config import CostConfig
from ferrogate.gateway.energy.config import AccountingConfig
from ferrogate.gateway.pollution.config import PollutionConfig
from ferrogate.gateway.uplink.config import UplinkConfig
from ferrogate.simulators.config import Simulation


class PlantFile(PlantConfig):
    simulation: Simulation | None = None
    accounting: AccountingConfig | None = None
    compliance: ComplianceConfig | None = None
    cost: CostConfig | None = None  # electricity tariffs and surcharges (docs/cost.md)
    api: ApiConfig = Field(default_factory=ApiConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    pollution: PollutionConfig | None = None
    uplink: UplinkConfig | None = None

    def kpi_subjects(self) -> dict[str, set[str]]:
        """scope -> the ids the energy books make KPIs for (none without an accounting section)."""
        if self.accounting is None:
            return {}
        return {
            "unit": {a.id for a in self.assets},
            "product": {p.id for p in self.accounting.products},
            "plant": {self.site.id},
        }

    def reference_errors(self) -> list[tuple[Location, str]]:
        """The plant model's own checks, then each section's against it (ids unique, references
        resolve), each with its location."""
        errors = super().reference_errors()
        if self.simulation is not None:
            errors += self.simulation.reference_errors(self.devices)
        errors += self.alarms.reference_errors(self.point_ids())
        if self.pollution is not None:
            errors += self.pollution.reference_errors(self.point_ids(), {a.id for a in self.assets})
        if self.uplink is not None:
            errors += self.uplink.reference_errors(self.point_ids(), self.kpi_subjects())
        if self.accounting is not None and not errors:
            from ferrogate.gateway.energy.model import resolve

            errors += resolve(self, self.accounting)[1]  # its cross-checks assume the references resolve
        if self.compliance is not None and self.accounting is None:
            errors.append((("compliance",), "the compliance section needs an 'accounting' section"))
        elif self.compliance is not None and not errors:
            from ferrogate.gateway.compliance.model import build as build_compliance
            from ferrogate.gateway.energy.model import resolve

            accounting = resolve(self, self.accounting)[0]
            assert accounting is not None
            errors += build_compliance(self, self.compliance, accounting)[1]
        if self.cost is not None and not errors:
            from ferrogate.gateway.cost.model import resolve_cost

            errors += resolve_cost(self, self.cost, self.accounting)[1]
        if self.uplink is not None and self.uplink.energy_platforms and not errors:
            errors += self._energy_platform_errors()
        return errors

    def _energy_platform_errors(self) -> list[tuple[Location, str]]:
        """The energy platforms report the books from InfluxDB, through their mapping files."""
        from ferrogate.gateway.energy.model import resolve
        from ferrogate.gateway.uplink.energy_platform.mapping import load_mapping

        assert self.uplink is not None
        if self.accounting is None or self.influxdb is None:
            missing = " and ".join(
                s for s, v in (("accounting", self.accounting), ("influxdb", self.influxdb)) if v is None
            )
            return [
                (("uplink", "energy_platforms"), f"the energy platforms report the books: add the {missing} section")
            ]
        model = resolve(self, self.accounting)[0]
        assert model is not None
        errors: list[tuple[Location, str]] = []
        for i, platform in enumerate(self.uplink.energy_platforms):
            problems = load_mapping(platform.mapping_file, model)[1]
            where = ("uplink", "energy_platforms", i, "mapping_file")
            errors += [(where, f"{platform.mapping_file}: {problem}") for problem in problems]
        return errors
