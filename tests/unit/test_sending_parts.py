"""The SMTP engine's small parts: the message data as it goes on the wire, reply reading
(enhanced status, queue id, 4.7.x), relay settings and back-offs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailshot.esp.sending.domains import DomainPolicy, Domains, domain_of
from mailshot.esp.sending.outcomes import Reply, enhanced_status, queue_id
from mailshot.esp.sending.relays import RelayBackoff, RelaySettings
from mailshot.esp.sending.wire import wire_data


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"a\nb", b"a\r\nb\r\n.\r\n"),  # bare LF, no final line end
        (b"a\rb\r\n", b"a\r\nb\r\n.\r\n"),  # bare CR
        (b".x\r\n..y\r\nz.\r\n", b"..x\r\n...y\r\nz.\r\n.\r\n"),  # leading dots doubled
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),  # a lone dot would end the data
    ],
)
def test_wire_data(data: bytes, wire: bytes) -> None:
    assert wire_data(data) == wire


def test_enhanced_status_and_queue_ids() -> None:
    assert enhanced_status(250, "2.0.0 Ok: queued as 4XyZ") == "2.0.0"
    assert enhanced_status(550, "5.1.1 <a@b>: Recipient address rejected") == "5.1.1"
    assert enhanced_status(550, "2.0.0 mismatched class") is None
    assert enhanced_status(250, "Ok") is None
    assert enhanced_status(421, "4.7.28 [1.2.3.4] rate limited") == "4.7.28"
    assert queue_id("2.0.0 Ok: queued as 4XyZ12") == "4XyZ12"
    assert queue_id("OK id=1tXyz-000abc-Q1") == "1tXyz-000abc-Q1"
    assert queue_id("2.0.0 Ok: QUEUED AS <ABC.1>") == "ABC.1"
    assert queue_id("Ok") is None
    assert Reply(451, "4.7.1 slow down").rate_limited
    assert not Reply(451, "4.3.0 try later").rate_limited
    assert not Reply(550, "5.7.1 relaying denied").rate_limited


def test_relay_settings_validate() -> None:
    r = RelaySettings(name="main", host="smtp.example.com", username="u", password="s3cr3t")
    assert r.port == 587 and r.security == "starttls" and r.messages_per_second == 0
    assert r.password is not None and "s3cr3t" not in repr(r)
    assert r.tls_context() is not None
    with pytest.raises(ValidationError, match="username and password"):
        RelaySettings(name="main", host="h", username="u")
    with pytest.raises(ValidationError):
        RelaySettings(name="bad name", host="h")
    with pytest.raises(ValidationError):
        RelaySettings(name="x", host="h", security="ssl")
    assert RelaySettings(name="x", host="h", security="none").tls_context() is None


def test_relay_backoff_doubles_up_to_its_bound_and_resets() -> None:
    b = RelayBackoff(1.0, 5.0)
    waits = [b.failed("421") for _ in range(5)]
    assert 1.0 <= waits[0] <= 1.1 and 2.0 <= waits[1] <= 2.2 and 4.0 <= waits[2] <= 4.4
    assert waits[3] == waits[4] == 5.0
    b.succeeded()
    assert b.failed("421") <= 1.1


def test_domain_limits_and_backoff() -> None:
    d = Domains(DomainPolicy(backoff_initial=10, backoff_max=20))
    assert domain_of("A.User@Example.COM") == "example.com"
    d.take("r", "example.com")
    assert not d.may_take("r", "example.com", 1) and d.may_take("r2", "example.com", 1)
    d.release("r", "example.com")
    assert d.may_take("r", "example.com", 1)
    assert d.backing_off("gmail.com") is None
    wait = d.rate_limited("gmail.com", "421 4.7.28 slow down")
    assert 10 <= wait <= 11
    held = d.backing_off("gmail.com")
    assert held is not None and held[1] == "421 4.7.28 slow down"
    assert d.rate_limited("gmail.com", "again") <= wait  # the same back-off, not a new one
