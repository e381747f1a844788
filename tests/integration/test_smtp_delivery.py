"""The SMTP engine against a real SMTP server (aiosmtpd on 127.0.0.1): every envelope gets
exactly one result with the right outcome, and the server receives each message once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from mailshot.esp.sending.domains import DomainPolicy
from mailshot.esp.sending.engine import SmtpSender, deliver
from mailshot.esp.sending.outcomes import Envelope, Outcome
from tests.support import aio
from tests.support.sending import SENDER, by_key, envelopes, relay, run
from tests.support.smtpd import CLOSE_AFTER, DROP, Script, free_port, smtp_server

PIPELINING = pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelined"])


def _script(pipelining: bool, **hooks: object) -> Script:
    return Script(ehlo_extra=["PIPELINING"] if pipelining else [], **hooks)  # type: ignore[arg-type]


@PIPELINING
def test_every_message_arrives_once_with_its_envelope(pipelining: bool) -> None:
    items = envelopes(60, domains=["example.com", "example.org"])
    with smtp_server(_script(pipelining)) as server:
        results = by_key(run(items, [relay(server.port, connections=3)]))
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in items)
    sent = {m.rcpt_tos: m for m in server.received}
    for item in items:
        got = sent[(item.rcpt_to,)]
        assert got.mail_from == SENDER
        assert got.data == item.data  # dots unstuffed by the server: the message as given
        result = results[item.key]
        assert result.outcome is Outcome.SENT
        assert (result.smtp_code, result.enhanced_status) == (250, "2.0.0")
        assert result.queue_id is not None and result.queue_id.startswith("Q")
        assert result.relay == "test" and result.attempt_at is not None
    assert len({r.queue_id for r in results.values()}) == 60
    assert all("SIZE=" in " ".join(o) for o in server.mail_options)


@PIPELINING
def test_a_550_fails_that_recipient_with_its_code_and_text(pipelining: bool) -> None:
    def rcpt(conn: int, n: int, address: str) -> str | None:
        return f"550 5.1.1 <{address}>: user unknown" if address.startswith("user3") else None

    items = envelopes(40)
    with smtp_server(_script(pipelining, rcpt=rcpt)) as server:
        results = by_key(run(items, [relay(server.port)]))
    refused = {e.key for e in items if e.rcpt_to.startswith("user3")}
    for key, result in results.items():
        if key in refused:
            assert result.outcome is Outcome.FAILED
            assert (result.smtp_code, result.enhanced_status) == (550, "5.1.1")
            assert "user unknown" in result.text
        else:
            assert result.outcome is Outcome.SENT
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in items if e.key not in refused)


@PIPELINING
def test_a_451_defers_and_the_connection_goes_on(pipelining: bool) -> None:
    def mail(conn: int, n: int, address: str) -> str | None:
        return "451 4.3.0 Temporary lookup failure" if n == 2 else None

    items = envelopes(12)
    with smtp_server(_script(pipelining, mail=mail)) as server:
        results = run(items, [relay(server.port, connections=1)])
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.SENT: 11, Outcome.DEFERRED: 1}
    (deferred,) = [r for r in results if r.outcome is Outcome.DEFERRED]
    assert (deferred.smtp_code, deferred.enhanced_status) == (451, "4.3.0")
    assert server.connections == 1
    assert len(server.received) == 11


@PIPELINING
def test_a_421_defers_closes_and_the_relay_backs_off(pipelining: bool) -> None:
    def rcpt(conn: int, n: int, address: str) -> str | None:
        return CLOSE_AFTER + "421 4.3.2 Service shutting down" if (conn, n) == (1, 3) else None

    items = envelopes(10)
    with smtp_server(_script(pipelining, rcpt=rcpt)) as server:
        results = run(
            items, [relay(server.port, connections=1, backoff_initial=0.4, backoff_max=1)]
        )
    deferred = [r for r in results if r.outcome is Outcome.DEFERRED]
    assert [(r.smtp_code, r.key) for r in deferred] == [(421, 2)]
    assert deferred[0].retry_after is not None and deferred[0].retry_after >= 0.4
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in items if e.key != 2)
    assert server.connections == 2
    _, second = server.opened_at
    before_421 = sorted(m.at for m in server.received)[1]  # the 421 came right after
    assert second - before_421 >= 0.4  # no new connection before the back-off ended


@PIPELINING
def test_a_drop_after_the_data_is_in_doubt_and_the_rest_still_goes(pipelining: bool) -> None:
    def data(conn: int, n: int, rcpts: tuple[str, ...]) -> str | None:
        return DROP if (conn, n) == (1, 2) else None

    items = envelopes(8)
    with smtp_server(_script(pipelining, data=data)) as server:
        results = by_key(run(items, [relay(server.port, connections=1)]))
    assert results[1].outcome is Outcome.IN_DOUBT
    assert results[1].smtp_code is None and "after the message was sent" in results[1].text
    assert all(results[k].outcome is Outcome.SENT for k in results if k != 1)
    # the server has it (that is why it is in doubt), and each message exactly once
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in items)
    assert server.connections == 2


@PIPELINING
def test_a_drop_before_the_data_defers_after_one_more_try(pipelining: bool) -> None:
    def rcpt(conn: int, n: int, address: str) -> str | None:
        return DROP if address == "user4@example.com" else None

    items = envelopes(8)
    with smtp_server(_script(pipelining, rcpt=rcpt)) as server:
        results = by_key(run(items, [relay(server.port, connections=1)]))
    assert results[4].outcome is Outcome.DEFERRED
    assert results[4].smtp_code is None
    assert "before the message was sent" in results[4].text
    assert server.rcpt_seen.count("user4@example.com") == 2  # tried on a second connection
    assert all(results[k].outcome is Outcome.SENT for k in results if k != 4)
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in items if e.key != 4)


@PIPELINING
def test_messages_per_connection_then_quit_and_reconnect(pipelining: bool) -> None:
    with smtp_server(_script(pipelining)) as server:
        results = run(
            envelopes(25), [relay(server.port, connections=1, messages_per_connection=10)]
        )
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.connections == 3
    assert sorted(Counter(m.connection for m in server.received).values()) == [5, 10, 10]


@PIPELINING
def test_the_pool_opens_as_many_connections_as_configured_and_no_more(pipelining: bool) -> None:
    with smtp_server(_script(pipelining, data_delay=0.02)) as server:
        results = run(envelopes(60), [relay(server.port, connections=3, messages_per_connection=0)])
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.connections == 3
    assert server.max_concurrent == 3


@PIPELINING
def test_at_most_max_per_domain_in_flight_to_one_domain(pipelining: bool) -> None:
    items = envelopes(30, domains=["one.test", "two.test", "three.test"])
    with smtp_server(_script(pipelining, data_delay=0.03)) as server:
        results = run(items, [relay(server.port, connections=4, max_per_domain=1)])
    assert all(r.outcome is Outcome.SENT for r in results)
    assert server.max_active == {"one.test": 1, "two.test": 1, "three.test": 1}


def test_a_4_7_x_reply_backs_off_that_destination_domain() -> None:
    def rcpt(conn: int, n: int, address: str) -> str | None:
        if address.endswith("@slow.test"):
            return "451 4.7.1 Too many messages, slow down"
        return None

    items = envelopes(20, domains=["slow.test", "fast.test"])
    policy = DomainPolicy(backoff_initial=30, backoff_max=60)
    with smtp_server(Script(rcpt=rcpt)) as server:
        results = by_key(run(items, [relay(server.port, connections=1)], domain_policy=policy))
    slow = [results[e.key] for e in items if e.rcpt_to.endswith("@slow.test")]
    assert (slow[0].outcome, slow[0].smtp_code, slow[0].enhanced_status) == (
        Outcome.DEFERRED,
        451,
        "4.7.1",
    )
    assert slow[0].retry_after is not None and slow[0].retry_after >= 30
    for later in slow[1:]:  # not attempted: the domain backs off
        assert later.outcome is Outcome.DEFERRED and later.attempt_at is None
        assert later.retry_after is not None and 0 < later.retry_after <= 33
    assert sum(a.endswith("@slow.test") for a in server.rcpt_seen) == 1
    assert all(results[e.key].outcome is Outcome.SENT for e in items if "fast" in e.rcpt_to)


def test_a_relay_that_refuses_connections_defers_and_another_takes_the_mail() -> None:
    dead = relay(free_port(), name="dead", connections=1)
    with smtp_server() as server:
        results = run(envelopes(20), [dead, relay(server.port, name="live", connections=1)])
    assert Counter(r.outcome for r in results) == {Outcome.SENT: 20}
    assert {r.relay for r in results} == {"live"}
    assert len(server.received) == 20

    only_dead = run(envelopes(3), [dead])
    assert [r.outcome for r in only_dead] == [Outcome.DEFERRED] * 3
    assert all(r.smtp_code is None and r.attempt_at is not None for r in only_dead)


def test_stop_returns_unstarted_envelopes_and_lets_transactions_finish() -> None:
    items = envelopes(40)

    async def go() -> list:
        async with SmtpSender([relay(server.port, connections=1)]) as sender:
            for item in items:
                await sender.submit(item)
            results = []
            async for result in sender.results():
                results.append(result)
                if len(results) == 2:
                    await sender.stop(grace=5)
            return results

    with smtp_server(Script(data_delay=0.1)) as server:
        results = aio.run(asyncio.wait_for(go(), 30))
    assert sorted(r.key for r in results) == list(range(40))
    sent = [r for r in results if r.outcome is Outcome.SENT]
    unstarted = [r for r in results if r.attempt_at is None]
    assert len(sent) + len(unstarted) == 40
    assert all(r.outcome is Outcome.DEFERRED and "not attempted" in r.text for r in unstarted)
    assert len(server.received) == len(sent) and len(sent) >= 3


def test_stop_after_grace_cuts_the_transaction_in_doubt() -> None:
    items = envelopes(5)

    async def go() -> list:
        sender = SmtpSender([relay(server.port, connections=1)])
        await sender.start()
        for item in items:
            await sender.submit(item)
        while not server.received:
            await asyncio.sleep(0.01)
        await sender.stop(grace=0.2)
        sender.close()
        return [r async for r in sender.results()]

    with smtp_server(Script(data_delay=3)) as server:
        results = by_key(aio.run(asyncio.wait_for(go(), 30)))
    assert results[0].outcome is Outcome.IN_DOUBT and results[0].attempt_at is not None
    assert all(results[k].attempt_at is None for k in range(1, 5))


@PIPELINING
def test_a_554_to_the_data_fails_that_message_and_the_next_ones_go(pipelining: bool) -> None:
    def data(conn: int, n: int, rcpts: tuple[str, ...]) -> str | None:
        return "554 5.7.1 Message content rejected" if n == 3 else None

    items = envelopes(10)
    with smtp_server(_script(pipelining, data=data)) as server:
        results = by_key(run(items, [relay(server.port, connections=1)]))
    assert (results[2].outcome, results[2].smtp_code, results[2].enhanced_status) == (
        Outcome.FAILED,
        554,
        "5.7.1",
    )
    assert all(results[k].outcome is Outcome.SENT for k in results if k != 2)
    assert server.connections == 1
    assert sorted(server.recipients()) == sorted(e.rcpt_to for e in items if e.key != 2)


def test_no_reply_to_the_data_in_time_is_in_doubt() -> None:
    timeouts = {"connect": 5, "command": 5, "data": 0.3}
    with smtp_server(Script(data_delay=1.0)) as server:
        settings = relay(server.port, connections=1, timeouts=timeouts)
        results = by_key(run(envelopes(2), [settings]))
    assert results[0].outcome is Outcome.IN_DOUBT
    assert "no reply from the relay in 0.3 s after the message was sent" in results[0].text


def test_no_reply_to_rcpt_in_time_defers() -> None:
    def rcpt(conn: int, n: int, address: str) -> str | None:
        time.sleep(0.5) if address == "user0@example.com" else None  # the server is stuck
        return None

    timeouts = {"connect": 5, "command": 0.2, "data": 5}
    with smtp_server(Script(rcpt=rcpt)) as server:
        settings = relay(server.port, connections=1, timeouts=timeouts)
        results = by_key(run(envelopes(2), [settings]))
    assert results[0].outcome is Outcome.DEFERRED
    assert "before the message was sent" in results[0].text
    assert results[1].outcome is Outcome.SENT


def test_wire_ready_data_goes_as_it_is_and_utf8_addresses_with_smtputf8() -> None:
    rcpt = "jürgen@exämple.de"
    data = b"Subject: x\r\n\r\n..dot doubled by the producer\r\nend\r\n"
    items = [
        Envelope(1, SENDER, "user1@example.com", data, wire_ready=True),
        Envelope(2, SENDER, rcpt, b"Subject: y\r\n\r\nhi\r\n"),
        Envelope(3, SENDER, "bad\r\nRCPT TO:<x@y.z>@example.com", b"Subject: z\r\n\r\n"),
    ]
    with smtp_server() as server:
        results = by_key(run(items, [relay(server.port, connections=1)]))
    assert results[1].outcome is Outcome.SENT and results[2].outcome is Outcome.SENT
    assert results[3].outcome is Outcome.FAILED and results[3].smtp_code is None
    assert "refused before sending" in results[3].text
    got = {m.rcpt_tos[0]: m for m in server.received}
    assert (
        got["user1@example.com"].data
        == b"Subject: x\r\n\r\n.dot doubled by the producer\r\nend\r\n"
    )
    assert rcpt in got
    assert ["SIZE=18", "SMTPUTF8"] in [sorted(o) for o in server.mail_options]


def test_deliver_with_stop_answers_every_envelope_it_read_and_reads_no_more() -> None:
    items = envelopes(200)
    read: list[int] = []
    stop = asyncio.Event()

    async def source() -> AsyncIterator[Envelope]:
        for item in items:
            read.append(item.key)
            yield item

    async def go() -> list:
        results = []
        settings = relay(server.port, connections=2)
        async for result in deliver(source(), [settings], stop=stop, max_pending=20):
            results.append(result)
            if len(results) == 5:
                stop.set()
        return results

    with smtp_server(Script(data_delay=0.05)) as server:
        results = aio.run(asyncio.wait_for(go(), 30))
    assert sorted(r.key for r in results) == sorted(read)
    assert len(read) < 200  # the rest stayed in the source
    sent = {r.key for r in results if r.outcome is Outcome.SENT}
    assert {int(m.rcpt_tos[0][4:].split("@")[0]) for m in server.received} == sent
    assert all(r.attempt_at is None for r in results if r.key not in sent)
