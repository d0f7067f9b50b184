"""The platform side of one logger connection, without the socket: bytes in; decoded messages,
replies and errors out. The TCP server (server.py), `ferrogate probe`, the golden cases and the
benchmark all run frames through this one path.

Order of checks per frame: framing and CRC, UTF-8, data segment, MN known, password, version; then
split packets are joined and CP decoded. A frame that fails any check gets no reply (an upload
that is not acknowledged is resent by the logger after its timeout, HJ 212-2017 6.6); a frame that
passes them gets its 9014 when its Flag asks for one (each packet of a split message on its own,
since a logger may wait for each packet's reply before sending the next).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo

from ferrogate.drivers.hj212.protocol.ack import data_reply
from ferrogate.drivers.hj212.protocol.errors import ErrorCode, Hj212Error
from ferrogate.drivers.hj212.protocol.frame import STANDARD_MAX_SEGMENT, FrameSplitter
from ferrogate.drivers.hj212.protocol.message import Message, decode_message
from ferrogate.drivers.hj212.protocol.segment import VERSION_2017, VERSION_2025, DataSegment, parse_segment
from ferrogate.drivers.hj212.protocol.split import Joined, PacketJoiner

ACCEPTED_VERSIONS = frozenset({VERSION_2017, VERSION_2025})


@dataclass(frozen=True, slots=True)
class LoggerAccount:
    """A data logger the platform knows: its MN, its password (PW) and where its data goes."""

    mn: str
    password: str | None  # None: it could not be read (every frame is refused, with that reason)
    device: str
    zone: tzinfo


@dataclass(slots=True)
class Received:
    """What one feed produced, in arrival order within each list."""

    messages: list[tuple[LoggerAccount, Message]] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)
    errors: list[tuple[Hj212Error, str | None]] = field(default_factory=list)  # (error, MN when known)
    frames: int = 0  # frames that passed the frame checks (CRC good)


@dataclass(slots=True)
class ReceiverLimits:
    max_segment: int = STANDARD_MAX_SEGMENT
    max_pending_splits: int = 16
    split_timeout_s: float = 60.0


class Receiver:
    def __init__(
        self,
        accounts: Mapping[str, LoggerAccount],
        limits: ReceiverLimits | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.accounts = accounts
        limits = limits or ReceiverLimits()
        self.splitter = FrameSplitter(limits.max_segment)
        joiner_args = {"clock": clock} if clock is not None else {}
        self.joiner = PacketJoiner(limits.max_pending_splits, limits.split_timeout_s, **joiner_args)
        self._split_accounts: dict[str, LoggerAccount] = {}

    def feed(self, data: bytes) -> Received:
        out = Received()
        for item in self.splitter.feed(data):
            if isinstance(item, Hj212Error):
                out.errors.append((item, None))
                continue
            out.frames += 1
            mn = None
            try:
                segment = _parse(item)
                mn = segment.mn
                account = self._authenticate(segment)
                if segment.is_split:
                    self._split_accounts[segment.mn] = account
                    for joined in self.joiner.add(segment):
                        self._deliver_joined(joined, out)
                else:
                    out.messages.append((account, decode_message(segment, account.zone)))
            except Hj212Error as exc:
                out.errors.append((exc, mn))
                continue
            if segment.wants_ack:
                out.replies.append(data_reply(segment))
        return out

    def expire(self) -> Received:
        """Split messages that waited too long for their packets, delivered with what came."""
        out = Received()
        for joined in self.joiner.expire():
            self._deliver_joined(joined, out)
        return out

    def _authenticate(self, segment: DataSegment) -> LoggerAccount:
        account = self.accounts.get(segment.mn)
        if account is None:
            raise Hj212Error(ErrorCode.UNKNOWN_MN, f"MN {segment.mn!r} is not configured")
        if account.password is None:
            raise Hj212Error(ErrorCode.BAD_PASSWORD, f"the password of MN {segment.mn!r} could not be read")
        if not hmac.compare_digest(segment.pw.encode(), account.password.encode()):
            raise Hj212Error(ErrorCode.BAD_PASSWORD, f"wrong PW for MN {segment.mn!r}")
        if segment.version not in ACCEPTED_VERSIONS:
            raise Hj212Error(
                ErrorCode.UNSUPPORTED_VERSION,
                f"Flag={segment.flag}: version {segment.version}, accepted 1 (HJ 212-2017) and 2 (HJ 212-2025)",
            )
        return account

    def _deliver_joined(self, joined: Joined, out: Received) -> None:
        segment = joined.segment
        account = self._split_accounts[segment.mn]
        if not joined.complete:
            out.errors.append(
                (
                    Hj212Error(ErrorCode.SPLIT_INCOMPLETE, f"QN {segment.qn}: {joined.packets} packet(s) came"),
                    segment.mn,
                )
            )
        try:
            message = decode_message(segment, account.zone)
        except Hj212Error as exc:
            out.errors.append((exc, segment.mn))
            return
        message.packets, message.complete = joined.packets, joined.complete
        out.messages.append((account, message))


def _parse(segment: bytes) -> DataSegment:
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Hj212Error(ErrorCode.BAD_ENCODING, f"data segment is not UTF-8: {exc.reason}") from None
    return parse_segment(text)
