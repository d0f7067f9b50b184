"""An OPC UA device and its points in the plant file: node ids, subscription or polling,
monitored-item settings, security (policy, mode, certificates, trust list) and user credentials."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ferrogate.drivers.config import DeviceBase, PointBase
from ferrogate.gateway.model_base import Credentials


class DeadbandType(StrEnum):
    absolute = "absolute"  # in the point's raw server units
    percent = "percent"  # of the node's EURange (servers without EURange reject it)


class OpcUaPoint(PointBase):
    node: str = Field(description="node id, e.g. 'ns=2;s=WHG1.P_kW' or 'nsu=URI;s=WHG1.P_kW'")
    # monitored item (subscription mode); the server may revise these
    sampling_interval_ms: float | None = Field(None, ge=0, le=3_600_000, description="default: the scan interval")
    queue_size: int = Field(1, ge=1, le=1000, description="values the server keeps between publishes")
    server_deadband: float | None = Field(None, ge=0, description="DataChangeFilter deadband, evaluated by the server")
    server_deadband_type: DeadbandType = DeadbandType.absolute

    @field_validator("node")
    @classmethod
    def _node_syntax(cls, value: str) -> str:
        if not re.match(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$", value):
            raise ValueError("not an OPC UA node id (expected e.g. 'ns=2;s=Name' or 'nsu=URI;i=1001')")
        return value


class OpcUaMode(StrEnum):
    auto = "auto"  # subscribe where the server allows it, poll the rest
    subscribe = "subscribe"
    poll = "poll"  # one Read request per scan for all points of the scan class


class SecurityPolicy(StrEnum):
    none = "None"
    basic256sha256 = "Basic256Sha256"
    aes128sha256rsaoaep = "Aes128Sha256RsaOaep"
    aes256sha256rsapss = "Aes256Sha256RsaPss"


class SecurityMode(StrEnum):
    none = "None"
    sign = "Sign"
    sign_and_encrypt = "SignAndEncrypt"


class OpcUaDevice(DeviceBase, Credentials):
    protocol: Literal["opcua"]
    endpoint: str
    mode: OpcUaMode = OpcUaMode.auto
    publishing_interval_ms: float | None = Field(None, ge=10, le=3_600_000, description="default: fastest scan")
    security_policy: SecurityPolicy = SecurityPolicy.none
    security_mode: SecurityMode = SecurityMode.none
    certificate: Path | None = Field(None, description="client application certificate (DER or PEM)")
    private_key: Path | None = Field(None, description="its private key (PEM)")
    trusted_certs_dir: Path | None = Field(None, description="directory of trusted server (or CA) certificates")
    application_uri: str = Field("urn:ferrogate:gateway", description="must match the certificate's SAN URI")
    points: list[OpcUaPoint] = Field(min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _opc_url(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return value

    @model_validator(mode="after")
    def _security_complete(self) -> OpcUaDevice:
        if (self.security_policy is SecurityPolicy.none) != (self.security_mode is SecurityMode.none):
            raise ValueError("security_policy and security_mode are both 'None' or both set (e.g. Sign)")
        if self.security_mode is not SecurityMode.none:
            missing = [k for k in ("certificate", "private_key", "trusted_certs_dir") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"security_mode {self.security_mode.value} needs {', '.join(missing)}")
        return self
