"""The SMTP relays mail goes out through: their settings (Pydantic models the application's
settings carry, several relays allowed) and each relay's back-off after 421 replies and
failed connections.

Which relay a message takes: every relay has its own pool of ``connections``; a message
goes to the first connection, of any relay, that is free to take one (so relays share the
work in proportion to how fast they take it), and a relay that is backing off takes none
until its back-off ends.
"""

from __future__ import annotations

import random
import ssl
import time
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


class RelayBackoff:
    """A relay's back-off: after a 421 reply or a failed connection no new connection is
    opened to it before ``resume_at`` (monotonic clock); each failure in a row doubles the
    wait (with up to a tenth of jitter), bounded by ``backoff_max``; mail accepted resets it."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self.resume_at = 0.0
        self.last_error: str | None = None

    def failed(self, error: str) -> float:
        """Note a failure; return the wait before the next connection."""
        wait = min(self.maximum, self.initial * 2.0**self.failures * (1 + random.random() / 10))
        self.failures += 1
        self.resume_at = max(self.resume_at, time.monotonic() + wait)
        self.last_error = error
        return wait

    def succeeded(self) -> None:
        self.failures = 0

    def remaining(self) -> float:
        return max(0.0, self.resume_at - time.monotonic())
