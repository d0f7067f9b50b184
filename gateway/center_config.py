"""The group energy center's file: the center's own broker and database, and the plants it serves.

A center file is told from a plant file by its `group:` section (a plant file has `devices:`). The
center collects nothing itself: each plant's edge box bridges its telemetry and its books' derived
series to the center's broker (deploy/group/), where ingest workers on the shared subscription write
them into one database with `site` as a tag, and the group API reads them (docs/group.md).

    site: {id: group_center, name: "Group energy center", timezone: Asia/Shanghai}
    mqtt: {host: center-broker, port: 8883, ...}
    influxdb: {url: http://center-db:8086, database: ferrogate_group, ...}
    group:
      plants:
        - {site: fj_eaf_steel, name: "Fujian EAF steel", timezone: Asia/Shanghai, province: Fujian}
        - {site: gz_ferroalloy, name: "Guizhou ferroalloy", timezone: Asia/Shanghai, province: Guizhou}
    api: {keys_file: /etc/ferrogate/group-api-keys.jsonl}
"""

from __future__ import annotations

from pydantic import Field

from ferrogate.api.config import ApiConfig
from ferrogate.gateway.config import InfluxConfig, Location, MqttConfig
from ferrogate.gateway.model_base import Identifier, Site, Strict, TimeZone


class GroupPlant(Strict):
    """One plant of the group: its `site.id` (the `site` tag of everything it sends) and how the
    group names it. Its own time zone places its days and months, as on its edge box."""

    site: Identifier
    name: str
    timezone: TimeZone = "Asia/Shanghai"
    province: str | None = None


class GroupSection(Strict):
    plants: list[GroupPlant] = Field(min_length=1)

    def plant(self, site: str) -> GroupPlant | None:
        return next((p for p in self.plants if p.site == site), None)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(p.site for p in self.plants)


class CenterFile(Strict):
    site: Site  # the center itself: its id names its MQTT clients, its time zone the group's reports
    mqtt: MqttConfig
    influxdb: InfluxConfig
    group: GroupSection
    api: ApiConfig = Field(default_factory=ApiConfig)

    def reference_errors(self) -> list[tuple[Location, str]]:
        errors: list[tuple[Location, str]] = []
        seen: set[str] = set()
        for index, plant in enumerate(self.group.plants):
            where = ("group", "plants", index, "site")
            if plant.site in seen:
                errors.append((where, f"duplicate plant site {plant.site!r}"))
            if plant.site == self.site.id:
                errors.append((where, f"{plant.site!r} is the center's own site id: give the center another"))
            seen.add(plant.site)
        return errors
