"""The settings of an SMTP relay sends go out through (the application's settings carry a
list of them): address, security, authentication, connections and pacing. The ESP's
sending engine (:mod:`mailshot.esp.sending`) acts on them."""

from __future__ import annotations

import ssl
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class Security(StrEnum):
    NONE = "none"  #: plain SMTP (a relay on the same host or network only)
    STARTTLS = "starttls"  #: plain connection upgraded with STARTTLS, required (port 587)
    TLS = "tls"  #: TLS from the first byte ("implicit TLS", port 465)


class RelayTimeouts(BaseModel):
    """Seconds to wait: for a connection and its greeting, TLS and authentication
    (``connect``); for the reply to each command (``command``); for the reply to the
    message data (``data``; RFC 5321 suggests 10 minutes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: float = Field(30.0, gt=0)
    command: float = Field(60.0, gt=0)
    data: float = Field(600.0, gt=0)


class RelaySettings(BaseModel):
    """One SMTP relay (a smarthost: the ESP's MTA or a provider's submission service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Security = Security.STARTTLS
    username: str | None = None
    password: SecretStr | None = None
    #: Verify the relay's certificate and name (``ca_file``: a PEM bundle to trust instead
    #: of the system's).
    verify_tls: bool = True
    ca_file: Path | None = None
    #: Connections kept open to this relay at most (the pool).
    connections: int = Field(4, ge=1, le=500)
    #: Messages sent over one connection before it is closed (QUIT) and a new one opened;
    #: 0 = no limit.
    messages_per_connection: int = Field(100, ge=0)
    #: The most messages per second through this relay, across every worker and process
    #: (kept in the database); 0 = unlimited.
    messages_per_second: float = Field(0.0, ge=0)
    timeouts: RelayTimeouts = RelayTimeouts()
    #: The name said in EHLO; default: this host's fully qualified name.
    local_hostname: str | None = None
    #: Messages in flight at once to one destination domain (the recipients' domain).
    max_per_domain: int = Field(20, ge=1)
    #: Back-off after a 421 reply or a failed connection: first wait, then doubled up to
    #: ``backoff_max`` (seconds).
    backoff_initial: float = Field(1.0, gt=0)
    backoff_max: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context for this relay, or None for plain SMTP."""
        if self.security is Security.NONE:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
