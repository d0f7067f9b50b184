"""Answers the platform side gives: the data reply 9014 to an upload whose Flag asks for one.

HJ 212-2017 (../shared/reference/hj212.md, "Ack"): the reply carries the upload's QN, PW and MN,
`ST=91` (system interaction), `CN=9014`, `Flag=4` (version 2017, no reply wanted) and an empty CP,
e.g. `QN=20240601085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&`.
The reference gives that same form as the answer to the HJ 212-2025 example upload, so 2025 loggers
get it too (what HJ 212-2025 itself prescribes is UNVERIFIED).
"""

from __future__ import annotations

from ferrogate.drivers.hj212.protocol.codes import CN_DATA_REPLY
from ferrogate.drivers.hj212.protocol.frame import encode_frame
from ferrogate.drivers.hj212.protocol.segment import VERSION_2017, DataSegment, build_segment, make_flag

ST_SYSTEM = "91"
REPLY_FLAG = make_flag(VERSION_2017, ack=False)


def data_reply(upload: DataSegment) -> bytes:
    reply = DataSegment(
        qn=upload.qn, st=ST_SYSTEM, cn=CN_DATA_REPLY, pw=upload.pw, mn=upload.mn, flag=REPLY_FLAG, cp=""
    )
    return encode_frame(build_segment(reply))
