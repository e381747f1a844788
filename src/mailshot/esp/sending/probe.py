"""Trying the relays as a send worker would reach them, briefly (``mailshot doctor``): open
a connection with a relay's settings (TLS or STARTTLS, EHLO, AUTH when it has a login)
under a short timeout, then QUIT. Sends nothing. Each answer names what went wrong in the
catalogue's words: unreachable, authentication refused, or refused otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from mailshot.core.errors import AppError, ErrorSpec
from mailshot.esp.diagnosis import errors
from mailshot.esp.sending.relays import RelaySettings, Security

#: Seconds a probe waits for a relay, at most.
TIMEOUT = 3.0


@dataclass(frozen=True)
class ProbeResult:
    relay: str
    ok: bool
    spec: ErrorSpec | None = None
    message: str = ""
    fix: str = ""


async def probe(relay: RelaySettings, timeout: float = TIMEOUT) -> ProbeResult:
    """Connect to ``relay``, authenticate if it has a login, and say QUIT."""
    password = relay.password.get_secret_value() if relay.password else None
    client = aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        local_hostname=relay.local_hostname or "mailshot.localhost",
        timeout=timeout,
        use_tls=relay.security is Security.TLS,
        start_tls=relay.security is Security.STARTTLS,
        tls_context=relay.tls_context(),
    )
    where = {"relay": relay.name, "host": relay.host, "port": relay.port}
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            if relay.username is not None and password is not None:
                await client.login(relay.username, password)
            await client.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return _bad(
            relay,
            errors.SEND_RELAY_AUTH_REFUSED,
            **where,
            username=relay.username,
            reply=f"{exc.code} {exc.message}".strip(),
        )
    except aiosmtplib.SMTPResponseException as exc:  # a greeting or EHLO refused, too
        reply = f"{exc.code} {exc.message}".strip()
        return _bad(relay, errors.SEND_RELAY_REFUSED, **where, reply=reply)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return _bad(relay, errors.SEND_RELAY_UNREACHABLE, **where, reason=_reason(exc))
    finally:
        client.close()
    return ProbeResult(relay.name, True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the probe's timeout"
    return str(exc) or type(exc).__name__


def _bad(settings: RelaySettings, spec: ErrorSpec, **params: Any) -> ProbeResult:
    err = AppError(spec, **params)
    return ProbeResult(settings.name, False, spec, err.message, err.fix)


def probe_all(relays: Sequence[RelaySettings], timeout: float = TIMEOUT) -> list[ProbeResult]:
    """Probe every relay at once; the answers in the relays' order."""

    async def every() -> list[ProbeResult]:
        return list(await asyncio.gather(*(probe(r, timeout) for r in relays)))

    return asyncio.run(every())
