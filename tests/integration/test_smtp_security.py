"""The SMTP engine over STARTTLS and implicit TLS (a certificate made here by a test CA)
and with AUTH PLAIN / LOGIN, against a real aiosmtpd server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mailshot.esp.sending.outcomes import Outcome
from tests.support.sending import envelopes, relay, run
from tests.support.smtpd import smtp_server

USER, PASSWORD = "esp-sender", "s3cret pass"
# aiosmtpd cannot tell that an implicit TLS connection is TLS, and says so
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    yield path


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_then_auth(mechanism: str, server_tls: ssl.SSLContext, ca_file: Path) -> None:
    with smtp_server(
        starttls=server_tls, credentials=(USER, PASSWORD), auth_mechanisms=(mechanism,)
    ) as server:
        settings = relay(
            server.port, security="starttls", ca_file=ca_file, username=USER, password=PASSWORD
        )
        results = run(envelopes(10), [settings])
    assert [r.outcome for r in results] == [Outcome.SENT] * 10
    assert len(server.received) == 10
    assert set(server.auth_mechanisms) == {mechanism}


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_implicit_tls_then_auth(mechanism: str, server_tls: ssl.SSLContext, ca_file: Path) -> None:
    with smtp_server(
        tls=server_tls, credentials=(USER, PASSWORD), auth_mechanisms=(mechanism,)
    ) as server:
        settings = relay(
            server.port, security="tls", ca_file=ca_file, username=USER, password=PASSWORD
        )
        results = run(envelopes(10), [settings])
    assert [r.outcome for r in results] == [Outcome.SENT] * 10
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in envelopes(10))
    assert set(server.auth_mechanisms) == {mechanism}


def test_a_certificate_not_trusted_is_refused(server_tls: ssl.SSLContext) -> None:
    with smtp_server(tls=server_tls) as server:
        results = run(envelopes(2), [relay(server.port, security="tls", connections=1)])
    assert [r.outcome for r in results] == [Outcome.DEFERRED] * 2
    assert all("CERTIFICATE_VERIFY_FAILED" in r.text for r in results)
    assert server.received == []


def test_a_wrong_password_defers_with_the_relays_reply(
    server_tls: ssl.SSLContext, ca_file: Path
) -> None:
    with smtp_server(starttls=server_tls, credentials=(USER, PASSWORD)) as server:
        settings = relay(
            server.port, security="starttls", ca_file=ca_file, username=USER, password="wrong"
        )
        results = run(envelopes(2), [settings.model_copy(update={"connections": 1})])
    assert [r.outcome for r in results] == [Outcome.DEFERRED] * 2
    assert all(r.smtp_code == 535 for r in results)
    assert server.received == []


def test_starttls_required_but_not_offered_defers() -> None:
    with smtp_server() as server:
        results = run(envelopes(2), [relay(server.port, security="starttls", connections=1)])
    assert [r.outcome for r in results] == [Outcome.DEFERRED] * 2
    assert all("STARTTLS" in r.text for r in results)
    assert server.received == []
