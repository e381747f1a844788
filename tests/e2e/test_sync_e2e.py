"""A sync end to end: the real server, real worker processes, the ESP's own refusal."""

from __future__ import annotations

import pytest

from mailshot.core.db.engine import make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.crm.sync import queue
from tests.conftest import Keys
from tests.e2e.conftest import Crm, ServerFactory, WorkerFactory
from tests.support.e2e_data import (
    add_list,
    add_mailshot,
    crm_engine,
    esp_audience,
    esp_campaign_ids,
)

pytestmark = pytest.mark.e2e


def queue_directly(settings: Settings, mailshot_id: int) -> None:
    """Put a sync in the queue through the service, skipping the preflight, so that no
    earlier check stops a mailshot the ESP will refuse (its refusal is what is tested)."""
    engine = crm_engine(settings)
    with make_sessionmaker(engine)() as session:
        queue.request_sync(session, mailshot_id, chunk_size=settings.chunk_size, preflight=False)
    engine.dispose()


def test_a_mailshot_arrives_and_a_second_sync_updates_the_same_campaign(
    start_server: ServerFactory, start_worker: WorkerFactory, keys: Keys, settings: Settings
) -> None:
    server = start_server(chunk_size=7)
    crm = Crm(server, keys)
    people = [
        crm.http.post(
            "/people",
            json={"first_name": f"P{i}", "last_name": "E2E", "email": f"Person.{i}@Example.com "},
        ).json()["id"]
        for i in range(20)
    ]
    opted_out = crm.http.post(
        "/people",
        json={"first_name": "No", "last_name": "Mail", "email": "no@example.com", "no_email": True},
    ).json()["id"]
    lst = crm.http.post("/mailing-lists", json={"name": "E2E list"}).json()["id"]
    r = crm.http.post(f"/mailing-lists/{lst}/members", json={"person_ids": [*people, opted_out]})
    assert r.status_code < 300, r.text
    made = crm.http.post(
        "/mailshots",
        json={
            "name": "Spring news",
            "subject": "Hello",
            "from_name": "Marketing",
            "from_address": "news@example.com",
            "html": "<p>Hi</p>",
            "audience_source": "mailing_list",
            "mailing_list_id": lst,
        },
    )
    assert made.status_code == 201, made.text
    mailshot = made.json()["id"]
    start_worker(server)

    crm.synchronise(mailshot)
    first = crm.wait([mailshot])[mailshot]
    assert first["state"] == "synchronised", first
    expected = {f"person.{i}@example.com" for i in range(20)}
    assert sorted(esp_audience(settings, mailshot)) == sorted(expected)
    assert (first["recipients_synced"], first["recipients_excluded"]) == (20, 1)

    # A change, then Synchronise again: the same ESP campaign, with the new audience only.
    r = crm.http.patch(f"/mailing-lists/{lst}/members/{people[0]}", json={"subscribed": False})
    assert r.status_code == 200, r.text
    crm.synchronise(mailshot)
    second = crm.wait([mailshot])[mailshot]
    assert second["state"] == "synchronised", second
    assert second["esp_campaign_id"] == first["esp_campaign_id"]
    assert len(esp_campaign_ids(settings, mailshot)) == 1
    assert sorted(esp_audience(settings, mailshot)) == sorted(expected - {"person.0@example.com"})


def test_a_name_the_esp_refuses_fails_alone(
    start_server: ServerFactory, start_worker: WorkerFactory, keys: Keys, settings: Settings
) -> None:
    server = start_server()
    engine = crm_engine(settings)
    list_id, emails = add_list(engine, "names", 5)
    too_long = add_mailshot(engine, list_id, "N" * 101)
    fine = add_mailshot(engine, list_id, "A fine name")
    engine.dispose()
    start_worker(server)
    crm = Crm(server, keys)
    queue_directly(settings, too_long)  # put in the queue directly: see queue_directly
    crm.synchronise(fine)
    ended = crm.wait([too_long, fine])

    refused = ended[too_long]
    assert refused["state"] == "failed"
    assert refused["last_error"]["code"] == "CAMPAIGN_NAME_TOO_LONG"
    assert "101" in refused["last_error"]["message"]
    assert refused["last_error"]["fix"]
    assert ended[fine]["state"] == "synchronised"
    assert set(esp_audience(settings, fine)) == emails
    assert esp_campaign_ids(settings, too_long) == []


def test_bad_names_in_the_queue_block_nothing(
    start_server: ServerFactory, start_worker: WorkerFactory, keys: Keys, settings: Settings
) -> None:
    server = start_server()
    engine = crm_engine(settings)
    list_id, emails = add_list(engine, "queue", 30)
    bad = [add_mailshot(engine, list_id, f"{i}" * 101) for i in range(3)]
    good = [add_mailshot(engine, list_id, f"Good {i}") for i in range(17)]
    engine.dispose()
    crm = Crm(server, keys)
    order = [*good[:5], *bad, *good[5:]]
    for m in order:  # all queued before any worker runs (the bad ones past the preflight)
        if m in bad:
            queue_directly(settings, m)
        else:
            crm.synchronise(m)
    start_worker(server, args=("--concurrency", "3"))
    ended = crm.wait(order, timeout=90)
    assert {m for m in good if ended[m]["state"] == "synchronised"} == set(good)
    for m in bad:
        assert ended[m]["state"] == "failed"
        assert ended[m]["last_error"]["code"] == "CAMPAIGN_NAME_TOO_LONG"
    for m in good:
        assert sorted(esp_audience(settings, m)) == sorted(emails)
