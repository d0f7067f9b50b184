"""HJ 212-2017 code tables used by ferrogate: system codes (ST), command codes (CN), data suffixes,
flue-gas factor codes with their units, and the data flags with the quality each maps to.

Source: HJ 212-2017 (issued 2017-04-24), as checked in ../shared/reference/hj212.md. Codes marked
`verified=False` come from HJ 212-2025 only second-hand (third-party code) and stay UNVERIFIED.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrogate.gateway.reading import OUT_OF_RANGE, SENSOR_FAULT, Quality

SOURCE = "HJ 212-2017"


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    name_zh: str
    verified: bool = True


SYSTEM_CODES = {
    c.code: c
    for c in (
        Code("31", "air pollution source (flue gas)", "大气环境污染源"),
        Code("32", "surface water pollution source", "地表水体环境污染源"),
        Code("51", "flue-gas process monitoring", "烟气排放过程监控"),
        Code("91", "system interaction", "系统交互"),
    )
}

# the uploads a data logger sends that carry monitoring data, by the kind of period they hold
CN_REALTIME = "2011"
CN_MINUTE = "2051"
CN_HOUR = "2061"
CN_DAY = "2031"
CN_DATA_REPLY = "9014"
CN_HEARTBEAT = "9015"
DATA_COMMANDS = {"realtime": CN_REALTIME, "minute": CN_MINUTE, "hour": CN_HOUR, "day": CN_DAY}

COMMAND_CODES = {
    c.code: c
    for c in (
        Code("1011", "get the logger's time", "提取现场机时间"),
        Code("1012", "set the logger's time", "设置现场机时间"),
        Code("1061", "get the real-time data interval", "提取实时数据间隔"),
        Code("1062", "set the real-time data interval", "设置实时数据间隔"),
        Code("1063", "get the minute data interval", "提取分钟数据间隔"),
        Code("1064", "set the minute data interval", "设置分钟数据间隔"),
        Code(CN_REALTIME, "real-time data", "实时数据"),
        Code("2021", "equipment running status", "设备运行状态"),
        Code(CN_DAY, "daily data", "日历史数据"),
        Code("2041", "daily equipment running time", "设备运行时间日历史数据"),
        Code(CN_MINUTE, "minute data", "分钟数据"),
        Code(CN_HOUR, "hourly data", "小时数据"),
        Code("2081", "logger boot time", "数采仪开机时间"),
        Code("9011", "request reply (QnRtn)", "请求应答"),
        Code("9012", "execution result (ExeRtn)", "执行结果"),
        Code("9013", "notification reply", "通知应答"),
        Code(CN_DATA_REPLY, "data reply", "数据应答"),
        Code(CN_HEARTBEAT, "heartbeat (HJ 212-2025)", "心跳", verified=False),
    )
}

# CP suffixes: what a factor's value means in a message
SUFFIXES = {
    "Rtd": "real-time value (2011)",
    "Min": "minimum of the period",
    "Avg": "average of the period",
    "Max": "maximum of the period",
    "Cou": "cumulative amount of the period (emission mass, flow volume)",
    "ZsRtd": "real-time value corrected to the reference O2 (折算)",
    "ZsMin": "corrected minimum",
    "ZsAvg": "corrected average",
    "ZsMax": "corrected maximum",
    "Flag": "data flag (N, F, M, S, D, C, T, B)",
    "EFlag": "equipment flag",
    "SampleTime": "sample time of the value",
}


@dataclass(frozen=True, slots=True)
class Factor:
    code: str
    name: str
    name_zh: str
    unit: str  # of Rtd/Min/Avg/Max (and the Zs values)
    cou_unit: str | None = None  # of Cou, where the standard gives one


FLUE_GAS_FACTORS = {
    f.code: f
    for f in (
        Factor("a00000", "flue-gas flow", "废气", "m3/s", "m3"),
        Factor("a01011", "flue-gas velocity", "烟气流速", "m/s"),
        Factor("a01012", "flue-gas temperature", "烟气温度", "degC"),
        Factor("a01013", "flue-gas pressure", "烟气压力", "kPa"),
        Factor("a01014", "flue-gas humidity", "烟气湿度", "%"),
        Factor("a19001", "oxygen", "氧气含量", "%"),
        Factor("a21026", "sulphur dioxide SO2", "二氧化硫", "mg/m3", "kg"),
        Factor("a21002", "nitrogen oxides NOx", "氮氧化物", "mg/m3", "kg"),
        Factor("a21003", "nitric oxide NO", "一氧化氮", "mg/m3", "kg"),
        Factor("a21004", "nitrogen dioxide NO2", "二氧化氮", "mg/m3", "kg"),
        Factor("a21005", "carbon monoxide CO", "一氧化碳", "mg/m3", "kg"),
        Factor("a34013", "particulate matter", "烟尘", "mg/m3", "kg"),
        Factor("a05001", "carbon dioxide CO2", "二氧化碳", "mg/m3", "kg"),
        Factor("a21024", "hydrogen chloride HCl", "氯化氢", "mg/m3", "kg"),
    )
}


def factor_unit(code: str, suffix: str) -> str | None:
    """The standard's unit of a flue-gas factor's value with this suffix; None when not in the table."""
    factor = FLUE_GAS_FACTORS.get(code)
    if factor is None:
        return None
    return factor.cou_unit if suffix == "Cou" else factor.unit


@dataclass(frozen=True, slots=True)
class DataFlag:
    flag: str
    meaning: str
    meaning_zh: str
    quality: Quality
    reason: str | None  # the reading's reason; the flag letter follows after ': '


# The flag-to-quality map (docs/hj212.md): N good; the instrument works but the value is not a normal
# measurement (stopped plant, maintenance, manual input, calibration) -> uncertain; no valid value
# (fault, over range, communication between instrument and logger lost) -> bad.
DATA_FLAGS = {
    f.flag: f
    for f in (
        DataFlag("N", "normal", "正常", Quality.GOOD, None),
        DataFlag("F", "source stopped", "停运", Quality.UNCERTAIN, "stopped"),
        DataFlag("M", "maintenance", "维护", Quality.UNCERTAIN, "maintenance"),
        DataFlag("S", "manual input", "手工输入", Quality.UNCERTAIN, "manual"),
        DataFlag("C", "calibration", "校准", Quality.UNCERTAIN, "calibration"),
        DataFlag("D", "instrument fault", "故障", Quality.BAD, SENSOR_FAULT),
        DataFlag("T", "over range", "超限", Quality.BAD, OUT_OF_RANGE),
        DataFlag("B", "instrument to logger communication lost", "通讯异常", Quality.BAD, "instrument_comm_error"),
    )
}
UNKNOWN_FLAG_REASON = "unknown_flag"
