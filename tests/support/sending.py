"""Helpers for the SMTP engine's tests: envelopes with distinct messages, a relay setting
pointing at a test server, and running :func:`deliver` to the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from mailshot.esp.sending.engine import SmtpSender, deliver
from mailshot.esp.sending.outcomes import DeliveryResult, Envelope
from mailshot.esp.sending.relays import RelaySettings
from tests.support import aio

SENDER = "bounces+42@esp.test"


def message(i: int, rcpt: str) -> bytes:
    return (
        f"From: Sender <news@esp.test>\r\nTo: <{rcpt}>\r\nSubject: Test {i}\r\n"
        f"Message-ID: <{i}@esp.test>\r\n\r\nHello {i}\r\n.a line that starts with a dot\r\n"
        "..and two\r\nend\r\n"
    ).encode()


def envelopes(n: int, domains: Iterable[str] = ("example.com",)) -> list[Envelope]:
    names = list(domains)
    out = []
    for i in range(n):
        rcpt = f"user{i}@{names[i % len(names)]}"
        out.append(Envelope(i, SENDER, rcpt, message(i, rcpt)))
    return out


def relay(port: int, **overrides: Any) -> RelaySettings:
    settings: dict[str, Any] = {
        "name": "test",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": 2,
        "local_hostname": "client.esp.test",
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "timeouts": {"connect": 5, "command": 5, "data": 5},
    }
    settings.update(overrides)
    return RelaySettings.model_validate(settings)


async def _source(items: Iterable[Envelope]) -> AsyncIterator[Envelope]:
    for item in items:
        yield item


def run(
    items: Iterable[Envelope], relays: list[RelaySettings], **options: Any
) -> list[DeliveryResult]:
    """Deliver ``items`` through ``relays`` and return every result (a 60 s limit)."""

    async def go() -> list[DeliveryResult]:
        return [r async for r in deliver(_source(items), relays, **options)]

    return aio.run(asyncio.wait_for(go(), 60))


def by_key(results: list[DeliveryResult]) -> dict[int, DeliveryResult]:
    out = {r.key: r for r in results}
    assert len(out) == len(results), "a key came back twice"
    return out


__all__ = ["SmtpSender", "by_key", "envelopes", "message", "relay", "run"]
