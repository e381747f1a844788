"""``{{ organisation }}`` end to end, on SQLite and PostgreSQL: a person's organisation in
the CRM is carried by the sync (the real bridge code over in-process HTTP) to the ESP's
contact, and the message a real SMTP server (aiosmtpd on 127.0.0.1) receives names it; a
person in no organisation gets the template's default."""

from __future__ import annotations

import email
import email.header
from email.message import Message
from typing import Any

from fastapi.testclient import TestClient

from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.inprocess_bridge import in_process_pool, work_all
from tests.support.sends import drain, esp_client, send_settings
from tests.support.smtpd import smtp_server

CRM = "http://testserver/crm/api/v1"
ORGANISATION = 'Müller & Söhne "Präzision" GmbH'
LINE = 'at {{ organisation | default("your organisation") }}.'


def _crm(client: TestClient, token: str, path: str, body: dict[str, Any]) -> int:
    r = client.post(f"{CRM}/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code < 300, r.text
    return int(r.json().get("id", 0)) if r.content else 0


def _parts(message: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out[part.get_content_subtype()] = payload.decode(part.get_content_charset() or "ascii")
    return out


def test_the_received_message_names_the_persons_organisation(
    settings: Settings, keys: Keys
) -> None:
    with smtp_server() as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            web, admin = esp, keys.crm_admin
            org = _crm(web, admin, "organisations", {"name": ORGANISATION})
            ann = _crm(
                web,
                admin,
                "people",
                {"first_name": "Ann", "email": "ann@example.org", "organisation_id": org},
            )
            bob = _crm(web, admin, "people", {"first_name": "Bob", "email": "bob@example.org"})
            lst = _crm(web, admin, "mailing-lists", {"name": "Organisations"})
            _crm(web, admin, f"mailing-lists/{lst}/members", {"person_ids": [ann, bob]})
            mailshot = _crm(
                web,
                admin,
                "mailshots",
                {
                    "name": "Organisation field",
                    "subject": "News for {{ organisation | default('you') }}",
                    "from_name": "Marketing",
                    "from_address": "news@example.com",
                    "html": f"<p>Hello {{{{ first_name }}}}, {LINE}</p>",
                    "text": f"Hello {{{{ first_name }}}}, {LINE}",
                    "audience_source": "mailing_list",
                    "mailing_list_id": lst,
                },
            )
            _crm(web, admin, f"mailshots/{mailshot}/synchronise", {})
            pool = in_process_pool(esp.app, keys)
            try:
                work_all(pool)
            finally:
                pool.crm.http.close()
                pool.esp.http.close()
            assert pool.counts["done"] == 3 and pool.counts["failed"] == 0, pool.counts

            started = esp.post(f"integrated-campaigns/{mailshot}/send")
            assert started.status_code == 202, started.text
            done = drain(esp, live, started.json()["id"])
    assert done["state"] == "sent" and done["counts"]["sent"] == 2, done
    by_rcpt = {m.rcpt_tos[0]: email.message_from_bytes(m.data) for m in server.received}
    assert set(by_rcpt) == {"ann@example.org", "bob@example.org"}

    ann_parts = _parts(by_rcpt["ann@example.org"])
    assert f"Hello Ann, at {ORGANISATION}." in ann_parts["plain"]
    assert "at Müller &amp; Söhne &#34;Präzision&#34; GmbH." in ann_parts["html"]
    subject = str(
        email.header.make_header(email.header.decode_header(by_rcpt["ann@example.org"]["Subject"]))
    )
    assert subject == f"News for {ORGANISATION}"

    bob_parts = _parts(by_rcpt["bob@example.org"])
    assert "Hello Bob, at your organisation." in bob_parts["plain"]
    assert "at your organisation.</p>" in bob_parts["html"]
