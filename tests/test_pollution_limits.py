"""Emission limits as alarms, on the logger's hourly averages as they arrive; limits carry their
source; a limit that cannot be checked (no hourly average mapped) is a configuration error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ferrogate.gateway.alarms import AlarmBook, Kind
from ferrogate.gateway.pollution.config import PollutionConfig
from ferrogate.gateway.pollution.limits import EmissionLimitEvaluator
from ferrogate.gateway.reading import Quality, Reading, ScanBatch

HOUR = 1_767_571_200_000_000_000
CONFIG = {
    "stacks": [
        {
            "id": "eaf1_stack",
            "name": "1# EAF stack",
            "furnace": "eaf1",
            "reference_o2_pct": 16,
            "hourly": {
                "so2": {"avg": "cems.so2_hour_avg", "corrected_avg": "cems.so2_hour_zs", "mass": "cems.so2_hour_kg"},
                "particulate": {"avg": "cems.dust_hour_avg", "mass": "cems.dust_hour_kg"},
            },
            "limits": [
                {"pollutant": "particulate", "reference": "steel_ultra_low.other.particulate"},
                {"pollutant": "so2", "high": 35, "source": "permit 2025-17", "year": 2025, "corrected": True},
            ],
        }
    ]
}


def batch(*readings: Reading) -> ScanBatch:
    return ScanBatch("demo", "cems", 1, HOUR, list(readings))


def test_hourly_averages_raise_and_clear_limits() -> None:
    book = AlarmBook()
    evaluator = EmissionLimitEvaluator(book, PollutionConfig.model_validate(CONFIG))
    evaluator.on_batch(
        batch(Reading("dust_hour_avg", 12.5, "mg/m3", HOUR), Reading("so2_hour_zs", 30.0, "mg/m3", HOUR)), 1
    )
    [dust] = book.active.values()
    assert (dust.kind, dust.source, dust.severity.value, dust.value) == (
        Kind.emission_limit_exceeded,
        "eaf1_stack.particulate",
        "critical",
        12.5,
    )
    assert "above its limit 10 mg/m3" in dust.message and "UNVERIFIED" in dust.message and "超低排放" in dust.message
    # the uncorrected SO2 average is not what the corrected limit looks at
    evaluator.on_batch(batch(Reading("so2_hour_avg", 80.0, "mg/m3", HOUR)), 2)
    assert len(book.active) == 1
    evaluator.on_batch(batch(Reading("so2_hour_zs", 36.0, "mg/m3", HOUR + 3600 * 10**9)), 3)
    so2 = book.active[(Kind.emission_limit_exceeded, "eaf1_stack.so2")]
    assert "corrected hourly average 36" in so2.message and "permit 2025-17" in so2.message
    # a flagged hour is reported as such, never compared; a valid one within the limit clears
    flagged = Reading("dust_hour_avg", None, "mg/m3", HOUR, Quality.UNCERTAIN, "calibration: C")
    evaluator.on_batch(batch(flagged), 4)
    assert book.active[(Kind.emission_data_flagged, "eaf1_stack.particulate")].message.endswith("(calibration: C)")
    assert (Kind.emission_limit_exceeded, "eaf1_stack.particulate") in book.active
    evaluator.on_batch(batch(Reading("dust_hour_avg", 4.0, "mg/m3", HOUR)), 5)
    assert set(book.active) == {(Kind.emission_limit_exceeded, "eaf1_stack.so2")}


def test_a_limit_needs_its_hourly_average_and_a_source() -> None:
    no_avg = {
        **CONFIG["stacks"][0],
        "hourly": {"particulate": {"mass": "cems.dust_hour_kg"}},
        "limits": CONFIG["stacks"][0]["limits"][:1],
    }
    with pytest.raises(ValidationError, match=r"map hourly\.particulate\.avg"):
        PollutionConfig.model_validate({"stacks": [no_avg]})
    sourceless = {**CONFIG["stacks"][0], "limits": [{"pollutant": "so2", "high": 35}]}
    with pytest.raises(ValidationError, match="'high' with its 'source'"):
        PollutionConfig.model_validate({"stacks": [sourceless]})
    unknown = {**CONFIG["stacks"][0], "limits": [{"pollutant": "so2", "reference": "made_up"}]}
    with pytest.raises(ValidationError, match="unknown reference 'made_up'"):
        PollutionConfig.model_validate({"stacks": [unknown]})
