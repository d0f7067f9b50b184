"""A CEMS data logger (数采仪) per stack: samples its stack every simulated second, keeps minute and
hourly statistics, and reports over HJ 212 as a TCP client to the gateway's listener: real-time
data (2011) every `realtime_interval_s`, minute data (2051) and hourly data (2061), each asking for
a 9014 reply (10 s timeout, 3 resends), everything unacknowledged kept and sent again later in order.

Statistics, as the logger computes them and the ledger records them: over a period, Min/Avg/Max of
the seconds whose flag is N; Cou (kg for pollutants, m3 for flow) = sum over those seconds of
C x Q x 1 s (mg -> kg: x 1e-6); the period's flag is N when at least 75 % of its seconds are N,
else the commonest other flag (HJ 212-2017 Appendix D's 75 % rule). Windows of the plant file flag
seconds (maintenance M, calibration C...); faults disturb the link (bad CRC, reconnects, silence,
split packets). The ledger (`record`) gets one line per message when it is acknowledged (or given
up), and one per fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from ferrogate.drivers.hj212.protocol.client import Hj212Client
from ferrogate.drivers.hj212.protocol.codes import CN_HOUR, CN_MINUTE, CN_REALTIME
from ferrogate.drivers.hj212.protocol.cp import build_cp
from ferrogate.drivers.hj212.protocol.frame import encode_frame
from ferrogate.drivers.hj212.protocol.message import format_hj212_time
from ferrogate.drivers.hj212.protocol.period import NORMAL, PeriodValues, fmt
from ferrogate.drivers.hj212.protocol.segment import VERSION_2017, VERSION_2025, DataSegment, build_segment, make_flag
from ferrogate.gateway.timeutil import iso_utc
from ferrogate.simulators.config import CemsLoggerSim, LoggerFault
from ferrogate.simulators.stack import StackModel

log = logging.getLogger(__name__)

ST_FLUE_GAS = "31"
# factor code -> (stack signal, whether it is a concentration with an emission mass)
FACTORS: dict[str, tuple[str, bool]] = {
    "a00000": ("flow_m3_s", False),
    "a19001": ("o2_pct", False),
    "a01012": ("temperature_c", False),
    "a21026": ("so2_mg_m3", True),
    "a21002": ("nox_mg_m3", True),
    "a34013": ("particulate_mg_m3", True),
    "a05001": ("co2_mg_m3", True),
}
FLOW = "a00000"
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 5.0  # wall seconds between connection attempts


@dataclass(slots=True)
class Period:
    start: int
    factors: dict[str, PeriodValues] = field(default_factory=lambda: {code: PeriodValues() for code in FACTORS})

    def add(self, values: dict[str, float], flags: dict[str, str]) -> None:
        flow = values[FLOW]  # m3/s for one second: m3
        for code, (_, pollutant) in FACTORS.items():
            value = values[code]
            # mg/m3 x m3 = mg, x 1e-6 = kg; the flow's own Cou is its volume
            amount = value * flow * 1e-6 if pollutant else flow if code == FLOW else 0.0
            self.factors[code].add(value, flags[code], amount)


@dataclass(slots=True)
class Upload:
    segment: DataSegment
    data_time: int  # simulated Unix seconds
    values: dict[str, dict[str, str]]
    attempts: int = 0


class CemsLogger:
    def __init__(
        self,
        config: CemsLoggerSim,
        stack: StackModel,
        *,
        mn: str,
        password: str,
        host: str,
        port: int,
        zone: tzinfo,
        clock: Callable[[], float],
        sim_start: float,
        record: Callable[[list[dict[str, Any]]], None],
        max_backlog: int = 100_000,
    ) -> None:
        self.config = config
        self.mn, self.password = mn, password
        self.host, self.port = host, port
        self.zone = zone
        self.clock = clock
        self.sim_start = sim_start
        self.record = record
        self.version = VERSION_2025 if config.version == 2025 else VERSION_2017
        self.outbox: deque[Upload] = deque(maxlen=max_backlog)
        self.faults: list[LoggerFault] = list(config.faults)
        self.sent = self.acknowledged = self.unanswered = self.reconnects = 0
        self._minute: Period | None = None
        self._hour: Period | None = None
        self._last_qn = 0
        self._wake = asyncio.Event()
        self._paused = False
        self._idle = asyncio.Event()  # set while no upload is on its way
        self._idle.set()
        self._task: asyncio.Task | None = None
        self._client: Hj212Client | None = None
        self._faults_recorded: set[int] = set()
        stack.listeners.append(self.sample)

    # -- data acquisition (called by the stack every simulated second) -----------------------------

    def flags_at(self, t: int) -> dict[str, str]:
        flags = dict.fromkeys(FACTORS, NORMAL)
        elapsed = t - self.sim_start
        for window in self.config.windows:
            offset = elapsed - window.at
            if window.every is not None and offset >= 0:
                offset %= window.every
            if 0 <= offset < window.duration:
                for code in window.factors or FACTORS:
                    if code in flags:
                        flags[code] = window.flag
        return flags

    def sample(self, t: int, stack: StackModel) -> None:
        values = {code: getattr(stack, signal) for code, (signal, _) in FACTORS.items()}
        flags = self.flags_at(t)
        cfg = self.config
        if self._minute is not None and t % 60 == 0:
            if cfg.minute_data:
                self._queue(CN_MINUTE, self._minute.start, self._period_values(self._minute), t)
            self._minute = None
        if self._hour is not None and t % 3600 == 0:
            if cfg.hour_data:
                self._queue(CN_HOUR, self._hour.start, self._period_values(self._hour), t)
            self._hour = None
        if self._minute is None and t % 60 == 0:
            self._minute = Period(t)
        if self._hour is None and t % 3600 == 0:
            self._hour = Period(t)
        for period in (self._minute, self._hour):
            if period is not None:
                period.add(values, flags)
        if t % round(cfg.realtime_interval_s) == 0:
            realtime = {code: {"Rtd": fmt(values[code]), "Flag": flags[code]} for code in FACTORS}
            self._queue(CN_REALTIME, t, realtime, t)

    @staticmethod
    def _period_values(period: Period) -> dict[str, dict[str, str]]:
        with_cou, without = ("Min", "Avg", "Max", "Cou"), ("Min", "Avg", "Max")
        return {
            code: period.factors[code].items(with_cou if pollutant or code == FLOW else without)
            for code, (_, pollutant) in FACTORS.items()
        }

    def _queue(self, cn: str, data_time: int, values: dict[str, dict[str, str]], now: int) -> None:
        qn = max(now * 1000, self._last_qn + 1)  # unique per logger: QN identifies the exchange
        self._last_qn = qn
        qn_text = format_hj212_time(qn * 1_000_000, self.zone, millis=True)
        cp = build_cp({"DataTime": format_hj212_time(data_time * 1_000_000_000, self.zone)}, values.items())
        segment = DataSegment(
            qn=qn_text,
            st=ST_FLUE_GAS,
            cn=cn,
            pw=self.password,
            mn=self.mn,
            flag=make_flag(self.version, ack=self.config.ack),
            cp=cp,
        )
        self.outbox.append(Upload(segment, data_time, values))
        self._wake.set()

    # -- the link ------------------------------------------------------------------------------------

    def inject(self, fault: LoggerFault) -> None:
        self.faults.append(fault)
        self._wake.set()

    def _fault_at(self, kind: str, t: float) -> LoggerFault | None:
        elapsed = t - self.sim_start
        for fault in self.faults:
            if fault.fault == kind and fault.at <= elapsed < fault.at + fault.duration:
                self._note_fault(fault)
                return fault
        return None

    def _note_fault(self, fault: LoggerFault) -> None:
        if id(fault) in self._faults_recorded:
            return
        self._faults_recorded.add(id(fault))
        start = self.sim_start + fault.at
        self.record(
            [
                {
                    "kind": "hj212_fault",
                    "device": self.config.device,
                    "fault": fault.fault,
                    "start": iso_utc(int(start * 1e9)),
                    "end": iso_utc(int((start + fault.duration) * 1e9)),
                }
            ]
        )

    async def pause(self) -> None:
        """Stop sending once the upload on its way is answered: the ledger then holds exactly what the
        platform acknowledged (tests compare the gateway's books with it)."""
        self._paused = True
        await self._idle.wait()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"cems-logger:{self.config.device}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_S
        while True:
            try:
                await self._session()
                delay = RECONNECT_FIRST_S  # the session ran: start the next backoff afresh
            except (OSError, ConnectionError, TimeoutError) as exc:
                log.info("CEMS logger %s: link to %s:%d lost: %s", self.config.device, self.host, self.port, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _hold(self, kind: str) -> None:
        """Wait (simulated time runs on) while a fault of this kind is in force."""
        while self._fault_at(kind, self.clock()) is not None:  # noqa: ASYNC110 (simulated time has no event)
            await asyncio.sleep(0.05)

    async def _session(self) -> None:
        await self._hold("reconnect")
        client = self._client = Hj212Client(
            self.host, self.port, timeout_s=self.config.reply_timeout_s, retries=self.config.retries
        )
        await client.connect()
        try:
            while True:
                if self._paused or not self.outbox:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._hold("silence")
                if self._fault_at("reconnect", self.clock()) is not None:
                    self.reconnects += 1
                    return  # drop the link; the loop reconnects once the fault is over
                upload = self.outbox[0]
                self._idle.clear()
                try:
                    delivered = await self._deliver(client, upload)
                finally:
                    self._idle.set()
                if delivered:
                    self.outbox.popleft()
                else:
                    self.unanswered += 1
                    await asyncio.sleep(self.config.reply_timeout_s)  # send it again later, in order
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    async def _deliver(self, client: Hj212Client, upload: Upload) -> bool:
        upload.attempts += 1
        segment = upload.segment
        split = self._fault_at("split", upload.data_time)
        packets = _split(segment, split.packets) if split is not None else [segment]
        bad_crc = self._fault_at("bad_crc", upload.data_time) is not None
        for packet in packets:
            first = _damaged(packet) if bad_crc else None
            self.sent += 1
            if not await client.send(packet, first_frame=first):
                return False
        self.acknowledged += 1
        self.record([self._ledger_line(upload, len(packets), bad_crc)])
        return True

    def _ledger_line(self, upload: Upload, packets: int, bad_crc: bool) -> dict[str, Any]:
        segment = upload.segment
        return {
            "kind": "hj212_upload",
            "device": self.config.device,
            "mn": segment.mn,
            "cn": segment.cn,
            "qn": segment.qn,
            "data_time": iso_utc(upload.data_time * 1_000_000_000),
            "values": {
                f"{code}-{suffix}": (value if suffix == "Flag" else float(value))
                for code, items in upload.values.items()
                for suffix, value in items.items()
            },
            "acknowledged": self.config.ack,
            "attempts": upload.attempts,
            "packets": packets,
            "bad_crc_first": bad_crc,
        }


def _split(segment: DataSegment, packets: int) -> list[DataSegment]:
    """The message as `packets` packets of whole CP items (DataTime in each)."""
    items = segment.cp.split(";")
    head, factors = items[0], items[1:]
    size = max(1, -(-len(factors) // packets))
    groups = [factors[i : i + size] for i in range(0, len(factors), size)]
    return [
        DataSegment(
            qn=segment.qn,
            st=segment.st,
            cn=segment.cn,
            pw=segment.pw,
            mn=segment.mn,
            flag=segment.flag | 0x02,
            pnum=len(groups),
            pno=i + 1,
            cp=";".join([head, *group]),
        )
        for i, group in enumerate(groups)
    ]


def _damaged(segment: DataSegment) -> bytes:
    """The frame with its CRC off by one: what a noisy line delivers."""
    frame = encode_frame(build_segment(segment))
    crc = int(frame[-6:-2], 16) ^ 0x0001
    return frame[:-6] + b"%04X\r\n" % crc
