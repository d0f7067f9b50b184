"""The plant file's `uplink:` section: the environmental platforms the plant reports to over HJ 212,
and which points go there as which factor, in minute (2051), hourly (2061) and daily (2031) data;
and the energy online-monitoring platforms (`energy_platforms`, energy_platform/config.py).

    uplink:
      platforms:
        - id: bureau
          host: 10.1.2.3
          port: 8001
          mn: "350100PLANT00001"          # the MN the bureau gave this plant
          password_env: BUREAU_HJ212_PW
          spool: {path: /var/lib/ferrogate/uplink-bureau.sqlite}
          points:
            - {code: a21026, point: eaf1_cems.so2, data: [minute, hour]}            # Min/Avg/Max
            - {code: a21026, point: eaf1_cems.so2_hour_kg, data: [hour], method: forward, suffix: Cou}
            - {code: e01001, point: incomer_meter.power, data: [hour, day]}        # any source
          figures:                                   # the energy books' computed figures, daily (2031)
            - {code: a05001, scope: unit, subject: eaf1, field: tco2_direct, unit: kg}
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from ferrogate.gateway.energy.kpi_fields import KPI_CARBON_FIELDS
from ferrogate.gateway.model_base import Credentials, Identifier, SpoolConfig, Strict
from ferrogate.gateway.uplink.energy_platform.config import EnergyPlatformConfig


def _factor_code(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]{1,12}", value):
        raise ValueError("a factor code: letters and digits, e.g. a21026")
    return value


FactorCode = Annotated[
    str, AfterValidator(_factor_code), Field(description="the factor code the platform knows it by, e.g. a21026")
]
PointRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", description="device_id.point_id")]
Location = tuple[str | int, ...]


class UplinkPoint(Strict):
    code: FactorCode
    point: PointRef
    data: list[Literal["minute", "hour", "day"]] = Field(min_length=1)
    method: Literal["avg", "sum", "forward"] = Field(
        "avg", description="avg: Min/Avg/Max; sum: Cou; forward: the point already holds the period's value"
    )
    suffix: Literal["Avg", "Cou", "Min", "Max", "ZsAvg"] = Field("Avg", description="forward: sent as code-suffix")

    @model_validator(mode="after")
    def _suffix_for_forward(self) -> UplinkPoint:
        if self.method != "forward" and "suffix" in self.model_fields_set:
            raise ValueError("'suffix' goes with method: forward (avg sends Min/Avg/Max, sum sends Cou)")
        return self


# the books' KPI figures in tonnes of CO2 (docs/accounting.md §6) that can go up, and the units they can go in
TONNE_FIELDS = tuple(f for f in KPI_CARBON_FIELDS if f.startswith("tco2_") and "_per_t" not in f)
PER_TONNE = {"t": 1.0, "kg": 1000.0}


class UplinkFigure(Strict):
    """A figure the energy books compute (a complete local day's KPI), sent as `code-Cou` in daily data."""

    code: FactorCode
    scope: Literal["unit", "product", "plant"]
    subject: Identifier = Field(description="the asset, product or site id the KPI is for")
    field: Literal[TONNE_FIELDS] = Field(description="the KPI field, in tonnes of CO2")  # type: ignore[valid-type]
    unit: Literal["t", "kg"] = Field("kg", description="the unit the platform takes it in (HJ 212 Cou of a05001: kg)")


class PlatformConfig(Credentials):
    id: Identifier
    host: str
    port: int = Field(ge=1, le=65535)
    mn: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,24}$")
    st: str = Field("31", pattern=r"^\d{2}$", description="system code: 31 flue gas, 32 water...")
    timeout_s: float = Field(10.0, gt=0, le=120, description="wait for the 9014 reply (HJ 212-2017: 10 s)")
    retries: int = Field(3, ge=0, le=10, description="resends before the platform counts as away (HJ 212-2017: 3)")
    retry_max_s: float = Field(60.0, gt=0, le=3600, description="cap of the backoff while the platform is away")
    close_after_s: float = Field(120.0, ge=0, le=86_400, description="a period closes this long after its end")
    spool: SpoolConfig = SpoolConfig()
    points: list[UplinkPoint] = Field(default_factory=list)
    figures: list[UplinkFigure] = Field(default_factory=list)

    @model_validator(mode="after")
    def _password(self) -> PlatformConfig:
        if self.password_env is None and self.password_file is None:
            raise ValueError("the platform's PW: give password_env or password_file")
        if not self.points and not self.figures:
            raise ValueError("nothing to send: give points, figures or both")
        return self


class UplinkConfig(Strict):
    platforms: list[PlatformConfig] = Field(default_factory=list, description="HJ 212 platforms")
    energy_platforms: list[EnergyPlatformConfig] = Field(
        default_factory=list, description="energy online-monitoring platforms (docs/energy-platform.md)"
    )

    @model_validator(mode="after")
    def _some_platform(self) -> UplinkConfig:
        if not self.platforms and not self.energy_platforms:
            raise ValueError("name at least one platform: 'platforms' (HJ 212) or 'energy_platforms'")
        return self

    def reference_errors(
        self, point_ids: dict[str, set[str]], subjects: dict[str, set[str]]
    ) -> list[tuple[Location, str]]:
        """Duplicate platforms, points that do not exist, figures of subjects the books do not have
        (`subjects`: scope -> the asset, product or site ids the books make KPIs for)."""
        errors: list[tuple[Location, str]] = []
        seen: set[str] = set()
        for i, platform in enumerate(self.platforms):
            if platform.id in seen:
                errors.append((("uplink", "platforms", i, "id"), f"duplicate platform id {platform.id!r}"))
            seen.add(platform.id)
            for j, item in enumerate(platform.points):
                device, _, point = item.point.partition(".")
                if point not in point_ids.get(device, ()):
                    errors.append((("uplink", "platforms", i, "points", j, "point"), f"no point {item.point!r}"))
            for j, figure in enumerate(platform.figures):
                if figure.subject not in subjects.get(figure.scope, ()):
                    where = ("uplink", "platforms", i, "figures", j, "subject")
                    errors.append((where, f"the books make no {figure.scope} KPI for {figure.subject!r}"))
        for i, energy in enumerate(self.energy_platforms):
            if energy.id in seen:
                errors.append((("uplink", "energy_platforms", i, "id"), f"duplicate platform id {energy.id!r}"))
            seen.add(energy.id)
        return errors
