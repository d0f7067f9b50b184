"""The plant file's `pollution:` section: the plant's stacks, which furnace each serves, the points
that carry their CEMS data (real-time values and, where the logger sends them, its hourly figures),
the reference O2 for corrected concentrations, and emission limits with their source.

    pollution:
      stacks:
        - id: eaf1_stack
          name: "1# EAF stack"
          furnace: eaf1                       # an asset; its tonnes and kWh/t sit beside kg/t
          realtime: {flow: eaf1_cems.flow, so2: eaf1_cems.so2, o2: eaf1_cems.o2}
          hourly:                             # the logger's 2061 figures, used when given
            so2: {avg: eaf1_cems.so2_hour_avg, mass: eaf1_cems.so2_hour_kg}
          limits:
            - {pollutant: particulate, reference: steel_ultra_low.other.particulate}
            - {pollutant: so2, high: 35, source: "site permit 2025-xx", year: 2025}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ferrogate.gateway.energy.reference import Confidence, Factor
from ferrogate.gateway.pollution.reference import EMISSION_LIMITS, POLLUTANTS, STATISTICS_RULES
from ferrogate.gateway.pollution.statistics import Rules

PointRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", description="device_id.point_id")]
PollutantId = Literal["so2", "nox", "particulate", "co2", "co", "hcl"]
Measured = Literal["so2", "nox", "particulate", "co2", "co", "hcl", "flow", "o2"]
Location = tuple[str | int, ...]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RulesConfig(_Section):
    """HJ 212-2017 Appendix D's validity rules; a site changes them only with a reason."""

    minute_min_readings: int = Field(int(STATISTICS_RULES["minute_min_readings"].value), ge=1, le=3600)
    max_spacing_s: float = Field(STATISTICS_RULES["max_spacing_s"].value, gt=0, le=60)
    hour_min_minutes: int = Field(int(STATISTICS_RULES["hour_min_minutes"].value), ge=1, le=60)
    day_min_hours: int = Field(int(STATISTICS_RULES["day_min_hours"].value), ge=1, le=24)
    normal_share: float = Field(STATISTICS_RULES["normal_share"].value, gt=0, le=1)

    def rules(self) -> Rules:
        return Rules(**self.model_dump())


class HourlyPoints(_Section):
    """A logger's hourly figures of one quantity: its average, the O2-corrected average (ZsAvg) and
    its mass (flow: volume, m3)."""

    avg: PointRef | None = None
    corrected_avg: PointRef | None = None
    mass: PointRef | None = None


class EmissionLimit(_Section):
    """An hourly-average concentration limit, named from the reference data or given with its source."""

    pollutant: PollutantId
    reference: str | None = Field(None, description=f"one of: {', '.join(EMISSION_LIMITS)}")
    high: float | None = Field(None, gt=0, description="mg/m3")
    source: str | None = Field(None, min_length=3)
    year: int | None = Field(None, ge=1990, le=2100)
    verified: bool = Field(False, description="checked against the source text")
    corrected: bool = Field(False, description="compare the O2-corrected average (the stack's reference_o2_pct)")
    severity: Literal["info", "warning", "critical"] = "critical"

    @model_validator(mode="after")
    def _named_or_given(self) -> EmissionLimit:
        if self.reference is not None:
            if self.reference not in EMISSION_LIMITS:
                raise ValueError(f"unknown reference {self.reference!r}; known: {', '.join(EMISSION_LIMITS)}")
            if self.high is not None or self.source is not None:
                raise ValueError("give either 'reference' or 'high' with its 'source', not both")
        elif self.high is None or self.source is None:
            raise ValueError("give 'reference' (a known limit) or 'high' with its 'source'")
        return self

    def factor(self) -> Factor:
        if self.reference is not None:
            return EMISSION_LIMITS[self.reference]
        assert self.high is not None and self.source is not None
        return Factor(
            self.high,
            "mg/m3",
            self.source,
            self.year or 0,
            Confidence.CONFIGURED,
            self.verified,
        )


class StackConfig(_Section):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    name: str
    furnace: str = Field(description="the asset (furnace) whose off-gas the stack carries")
    realtime: dict[Measured, PointRef] = Field(default_factory=dict, description="real-time values (2011)")
    hourly: dict[Measured, HourlyPoints] = Field(default_factory=dict, description="the logger's hourly data (2061)")
    reference_o2_pct: float | None = Field(None, ge=0, lt=21, description="O2 the corrected concentration refers to")
    limits: list[EmissionLimit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _usable(self) -> StackConfig:
        measured = set(self.realtime) | {k for k, v in self.hourly.items() if v.mass or v.avg}
        if not measured & set(POLLUTANTS):
            raise ValueError("the stack has no pollutant: map at least one in 'realtime' or 'hourly'")
        for pollutant in set(self.realtime) & set(POLLUTANTS):
            if "flow" not in self.realtime and (pollutant not in self.hourly or self.hourly[pollutant].mass is None):
                raise ValueError(f"{pollutant}: masses from real-time data need the flow ('realtime: {{flow: ...}}')")
        for limit in self.limits:
            if limit.corrected and self.reference_o2_pct is None:
                raise ValueError(f"{limit.pollutant} limit is on the corrected concentration: set reference_o2_pct")
            if self.limit_point(limit) is None:
                which = "corrected_avg" if limit.corrected else "avg"
                raise ValueError(
                    f"{limit.pollutant} limit: limits are checked on the logger's hourly averages; "
                    f"map hourly.{limit.pollutant}.{which}"
                )
        return self

    def limit_point(self, limit: EmissionLimit) -> str | None:
        """The hourly point a limit is checked on."""
        hourly = self.hourly.get(limit.pollutant)
        if hourly is None:
            return None
        return hourly.corrected_avg if limit.corrected else hourly.avg

    def points(self) -> list[tuple[Location, str]]:
        """Every point reference with its location inside the stack."""
        out: list[tuple[Location, str]] = [(("realtime", k), v) for k, v in self.realtime.items()]
        for k, hourly in self.hourly.items():
            fields = (("avg", hourly.avg), ("corrected_avg", hourly.corrected_avg), ("mass", hourly.mass))
            out += [(("hourly", k, field), ref) for field, ref in fields if ref]
        return out


class PollutionConfig(_Section):
    rules: RulesConfig = Field(default_factory=RulesConfig)
    stacks: list[StackConfig] = Field(min_length=1)

    def reference_errors(self, point_ids: dict[str, set[str]], asset_ids: set[str]) -> list[tuple[Location, str]]:
        errors: list[tuple[Location, str]] = []
        seen: set[str] = set()
        for i, stack in enumerate(self.stacks):
            where: Location = ("pollution", "stacks", i)
            if stack.id in seen:
                errors.append(((*where, "id"), f"duplicate stack id {stack.id!r}"))
            seen.add(stack.id)
            if stack.furnace not in asset_ids:
                errors.append(((*where, "furnace"), f"unknown asset {stack.furnace!r}"))
            for location, ref in stack.points():
                device, _, point = ref.partition(".")
                if point not in point_ids.get(device, ()):
                    errors.append(((*where, *location), f"no point {ref!r} in devices"))
        return errors

    def stack(self, stack_id: str) -> StackConfig:
        for stack in self.stacks:
            if stack.id == stack_id:
                return stack
        raise KeyError(stack_id)
