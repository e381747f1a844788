"""Sending a campaign through real SMTP (aiosmtpd on 127.0.0.1), on SQLite and PostgreSQL:
each recipient received once, replies recorded per recipient (550 failed, 421 deferred then
sent, a connection dropped after the data in doubt and resent only when asked), and the
counts of the send exact."""

from __future__ import annotations

import email
from collections import Counter

from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.sends import campaign, drain, esp_client, ledger, people, send_settings
from tests.support.smtpd import DROP, Script, smtp_server


def _received(server: object) -> Counter[str]:
    return Counter(server.recipients())  # type: ignore[attr-defined]


def test_every_recipient_is_received_once_personalised(settings: Settings, keys: Keys) -> None:
    with smtp_server() as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(60))
            started = esp.post("integrated-campaigns/1/send")
            assert started.status_code == 202, started.text
            send = started.json()
            assert send["state"] == "sending" and send["total"] == 60
            assert send["counts"]["pending"] == 60
            done = drain(esp, live, send["id"])
            rows = ledger(esp, send["id"], "sent")
    assert done["state"] == "sent" and done["finished_at"] is not None
    assert done["counts"]["sent"] == 60 and done["done"] == 60
    assert sum(done["counts"].values()) == 60
    assert _received(server) == Counter(f"p{i}@example.org" for i in range(60))
    assert len(rows) == 60 and all(r["reply_code"] == 250 and r["queue_id"] for r in rows)
    by_rcpt = {m.rcpt_tos[0]: email.message_from_bytes(m.data) for m in server.received}
    message = by_rcpt["p7@example.org"]
    assert message["Subject"] == "Hello Name7"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://esp.example.test/esp/u/")
    rid = next(r["id"] for r in rows if r["email"] == "p7@example.org")
    assert message["Message-ID"].startswith(f"<{done['id']}.{rid}.")


def test_a_550_fails_those_recipients_with_the_code(settings: Settings, keys: Keys) -> None:
    def rcpt(_conn: int, _n: int, address: str) -> str | None:
        return "550 5.1.1 user unknown" if address.startswith("p1") else None

    with smtp_server(Script(rcpt=rcpt)) as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 2, people(30))
            send = esp.post("integrated-campaigns/2/send").json()
            done = drain(esp, live, send["id"])
            failed = ledger(esp, send["id"], "failed")
    refused = {f"p{i}@example.org" for i in range(30) if str(i).startswith("1")}
    assert {r["email"] for r in failed} == refused
    assert all((r["reply_code"], r["enhanced_status"]) == (550, "5.1.1") for r in failed)
    assert done["state"] == "sent"
    assert done["counts"]["failed"] == len(refused)
    assert done["counts"]["sent"] == 30 - len(refused)
    assert _received(server) == Counter({f"p{i}@example.org" for i in range(30)} - refused)


def test_a_421_defers_then_the_retry_sends(settings: Settings, keys: Keys) -> None:
    refused_once: set[str] = set()

    def rcpt(_conn: int, _n: int, address: str) -> str | None:
        if address.startswith("p2") and address not in refused_once:
            refused_once.add(address)
            return "451 4.3.0 try again later"
        return None

    with smtp_server(Script(rcpt=rcpt)) as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 3, people(30))
            send = esp.post("integrated-campaigns/3/send").json()
            done = drain(esp, live, send["id"])
            rows = ledger(esp, send["id"])
    assert refused_once == {f"p{i}@example.org" for i in range(30) if str(i).startswith("2")}
    assert done["state"] == "sent" and done["counts"]["sent"] == 30
    assert _received(server) == Counter(f"p{i}@example.org" for i in range(30))
    retried = [r for r in rows if r["email"] in refused_once]
    assert all(r["attempts"] == 2 and r["state"] == "sent" for r in retried)


def test_a_connection_lost_after_the_data_is_in_doubt_until_resent(
    settings: Settings, keys: Keys
) -> None:
    dropped: set[str] = set()

    def data(_conn: int, _n: int, rcpts: tuple[str, ...]) -> str | None:
        if rcpts[0].startswith("p5") and rcpts[0] not in dropped:
            dropped.add(rcpts[0])
            return DROP
        return None

    with smtp_server(Script(data=data)) as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 4, people(20))
            send = esp.post("integrated-campaigns/4/send").json()
            done = drain(esp, live, send["id"])
            doubt = ledger(esp, send["id"], "in_doubt")
            before = _received(server)
            again = drain(esp, live, send["id"])  # workers never resend in-doubt by themselves
            assert _received(server) == before
            resent = esp.post(f"sends/{send['id']}/resend-in-doubt")
            assert resent.status_code == 200, resent.text
            assert resent.json()["resent"] == len(dropped)
            assert resent.json()["send"]["state"] == "sending"
            final = drain(esp, live, send["id"])
            nothing = esp.post(f"sends/{send['id']}/resend-in-doubt")
    assert dropped == {"p5@example.org"}
    assert {r["email"] for r in doubt} == dropped
    assert done["state"] == "sent" and done["counts"]["in_doubt"] == 1
    assert again["counts"] == done["counts"]
    assert before == Counter(f"p{i}@example.org" for i in range(20))  # the server had it
    assert final["counts"]["sent"] == 20 and final["counts"]["in_doubt"] == 0
    assert _received(server)["p5@example.org"] == 2  # resent: the operator's choice
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "SEND_NOTHING_IN_DOUBT"
