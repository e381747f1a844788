"""Preflight at Synchronise against the ESP's limits as the bridge relayed them: a 150-
character name refused with both lengths and nothing queued, renamed and synchronised
through a real worker pool (in-process) until it arrives in the ESP; each other rule; and
the warning while the CRM has never received the ESP's limits."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mailshot.app.server import create_app
from mailshot.bridge.worker import WorkerPool
from mailshot.core.db.engine import make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.crm.models import Mailshot, Person
from mailshot.crm.sync.preflight import LIMITS_UNKNOWN_WARNING
from tests.conftest import Keys
from tests.support.e2e_data import add_list, add_mailshot, crm_engine
from tests.support.inprocess_bridge import in_process_pool

API = "/crm/api/v1"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def relay_limits(client: TestClient, keys: Keys) -> dict[str, Any]:
    """What the bridge does: read the ESP's limits, hand them to the CRM."""
    limits: dict[str, Any] = client.get(
        "/esp/api/v1/limits", headers=_h(keys.esp_integration)
    ).json()
    stored = client.put(
        f"{API}/integration/esp-limits",
        json={"limits": limits, "read_at": "2030-01-01T09:00:00Z"},
        headers=_h(keys.crm_integration),
    )
    assert stored.status_code == 200, stored.text
    return limits


_tags = itertools.count()


def _mailshot(settings: Settings, name: str, n: int = 3, **fields: Any) -> int:
    """A mailshot valid in every field (unless ``fields`` say otherwise) over a new list of
    ``n`` people, of whom the last ``x`` opted out."""
    engine = crm_engine(settings)
    excluded = fields.pop("x", 0)
    list_id, _ = add_list(engine, f"t{next(_tags)}", n, excluded=excluded)
    mailshot_id = add_mailshot(engine, list_id, name, **fields)
    engine.dispose()
    return mailshot_id


def _rules(resp: Any) -> dict[str, dict[str, Any]]:
    return {d["rule"]: d for d in resp.json()["error"]["details"]}


def test_limits_are_stored_and_shown(client: TestClient, keys: Keys) -> None:
    assert (
        client.get(f"{API}/integration/esp-limits", headers=_h(keys.crm_marketer)).json()["known"]
        is False
    )
    limits = relay_limits(client, keys)
    shown = client.get(f"{API}/integration/esp-limits", headers=_h(keys.crm_marketer)).json()
    assert shown["known"] is True
    assert shown["limits"] == limits
    assert shown["name_max_length"] == limits["campaign"]["name_max_length"]
    assert shown["read_at"].startswith("2030-01-01T09:00:00")
    # Only the bridge's scope may report them.
    refused = client.put(
        f"{API}/integration/esp-limits", json={"limits": limits}, headers=_h(keys.crm_marketer)
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "AUTH_SCOPE_MISSING"


def test_without_the_esp_limits_the_name_length_is_not_checked_and_it_says_so(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    long_name = _mailshot(settings, "L" * 150)
    pre = client.get(f"{API}/mailshots/{long_name}/preflight", headers=_h(keys.crm_marketer))
    assert pre.status_code == 200
    assert pre.json()["ok"] is True and pre.json()["warnings"] == [LIMITS_UNKNOWN_WARNING]
    asked = client.post(f"{API}/mailshots/{long_name}/synchronise", headers=_h(keys.crm_admin))
    assert asked.status_code == 202
    assert asked.json()["warnings"] == [LIMITS_UNKNOWN_WARNING]


def test_a_150_character_name_is_refused_with_both_lengths_and_nothing_is_queued(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    limits = relay_limits(client, keys)
    mailshot_id = _mailshot(settings, "N" * 150)
    admin = _h(keys.crm_admin)
    refused = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    assert refused.status_code == 422
    err = refused.json()["error"]
    assert err["code"] == "SYNC_PREFLIGHT_FAILED"
    assert (
        err["fix"] == "Correct the fields listed and press Synchronise again; nothing was queued."
    )
    [problem] = err["details"]
    assert problem["field"] == "name" and problem["rule"] == "name_too_long"
    max_length = limits["campaign"]["name_max_length"]
    assert problem["message"] == (
        f"The name has 150 characters; the ESP accepts at most {max_length}."
    )
    assert problem["params"] == {"length": 150, "max_length": max_length}
    assert "150" in err["message"]
    status = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=admin).json()
    assert status["state"] == "not_synchronised" and status["job_id"] is None
    assert client.get(f"{API}/sync/queue", headers=admin).json()["items"] == []
    # The preflight endpoint answers the same, without queueing.
    pre = client.get(f"{API}/mailshots/{mailshot_id}/preflight", headers=admin).json()
    assert pre["ok"] is False and pre["warnings"] == []
    assert [p["rule"] for p in pre["problems"]] == ["name_too_long"]
    # Retry is refused the same way (a cancelled sync of the long name, say).
    assert client.post(f"{API}/mailshots/{mailshot_id}/sync/retry", headers=admin).status_code in (
        409,
        422,
    )


def test_each_rule_has_its_own_problem(client: TestClient, keys: Keys, settings: Settings) -> None:
    relay_limits(client, keys)
    admin = _h(keys.crm_admin)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"subject": "  "}, "subject", "subject_missing"),
        ({"from_name": None}, "from_name", "sender_missing"),
        ({"from_address": None}, "from_address", "sender_missing"),
        ({"from_address": "not an address"}, "from_address", "sender_invalid"),
        ({"reply_to": "nobody@"}, "reply_to", "reply_to_invalid"),
        ({"html": None, "text": ""}, "content", "content_missing"),
        ({"mailing_list_id": None}, "mailing_list_id", "audience_source_missing"),
        ({"x": 3}, "audience", "audience_empty"),
    ]
    for n, (fields, field, rule) in enumerate(cases):
        mailshot_id = _mailshot(settings, f"Case {n}", **fields)
        r = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
        assert r.status_code == 422, (rule, r.text)
        problems = _rules(r)
        assert list(problems) == [rule], (rule, problems)
        assert problems[rule]["field"] == field
        assert problems[rule]["message"]


def test_several_problems_are_all_listed(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    relay_limits(client, keys)
    mailshot_id = _mailshot(settings, "M" * 101, subject=None, html=None, text=None, x=3)
    r = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=_h(keys.crm_admin))
    assert set(_rules(r)) == {
        "name_too_long",
        "subject_missing",
        "content_missing",
        "audience_empty",
    }


def test_a_deleted_list_and_a_campaign_audience(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    admin = _h(keys.crm_admin)
    lst = client.post(f"{API}/mailing-lists", json={"name": "Gone"}, headers=admin).json()["id"]
    gone = _mailshot(settings, "Gone list")
    engine = crm_engine(settings)
    with engine.begin() as conn:
        conn.execute(update(Mailshot).where(Mailshot.id == gone).values(mailing_list_id=lst))
    engine.dispose()
    client.delete(f"{API}/mailing-lists/{lst}", headers=admin)
    r = client.post(f"{API}/mailshots/{gone}/synchronise", headers=admin)
    assert list(_rules(r)) == ["audience_source_missing"]

    person = client.post(
        f"{API}/people", json={"first_name": "Ann", "email": "ann@example.com"}, headers=admin
    ).json()["id"]
    campaign = client.post(
        f"{API}/marketing-campaigns",
        json={"name": "C", "member_statuses": ["Invited", "Registered"]},
        headers=admin,
    ).json()["id"]
    added = client.post(
        f"{API}/marketing-campaigns/{campaign}/members",
        json={"person_ids": [person], "status": "Invited"},
        headers=admin,
    )
    assert added.status_code < 300, added.text
    fields = {
        "audience_source": "marketing_campaign",
        "mailing_list_id": None,
        "marketing_campaign_id": campaign,
    }
    invited = _mailshot(settings, "Invited", campaign_member_statuses=["Invited"], **fields)
    registered = _mailshot(
        settings, "Registered", campaign_member_statuses=["Registered"], **fields
    )
    assert client.post(f"{API}/mailshots/{invited}/synchronise", headers=admin).status_code == 202
    r = client.post(f"{API}/mailshots/{registered}/synchronise", headers=admin)
    assert list(_rules(r)) == ["audience_empty"]


def test_gdpr_mode_without_consent_empties_the_audience(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    admin = _h(keys.crm_admin)
    mailshot_id = _mailshot(settings, "Consent")
    assert client.put(f"{API}/settings", json={"gdpr_mode": True}, headers=admin).status_code == 200
    r = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    assert list(_rules(r)) == ["audience_empty"]
    engine = crm_engine(settings)
    with make_sessionmaker(engine)() as s:
        some = s.query(Person).order_by(Person.id.desc()).first()
        assert some is not None
        person_id = some.id
    engine.dispose()
    consent = client.post(
        f"{API}/people/{person_id}/compliance-records", json={"basis": "consent"}, headers=admin
    )
    assert consent.status_code == 201, consent.text
    assert client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin).status_code == (
        202
    )


@pytest.fixture
def pool(settings: Settings, keys: Keys) -> Iterator[tuple[TestClient, WorkerPool]]:
    """The embedded app in-process and a real worker pool talking to it over its ASGI
    transport (the pool relays the ESP's limits when it starts, as in production)."""
    app = create_app(settings)
    with TestClient(app) as client:
        workers = in_process_pool(
            app,
            keys,
            concurrency=1,
            lease_poll_seconds=0.05,
            idle_max_seconds=0.2,
            health_seconds=0.5,
        )
        workers.start()
        try:
            yield client, workers
        finally:
            workers.stop()
            workers.crm.http.close()
            workers.esp.http.close()


def _wait(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_renamed_after_a_refusal_it_synchronises_and_arrives(
    pool: tuple[TestClient, WorkerPool], keys: Keys, settings: Settings
) -> None:
    client, _ = pool
    admin = _h(keys.crm_admin)
    _wait(
        lambda: client.get(f"{API}/integration/esp-limits", headers=admin).json()["known"]
    )  # relayed by the pool when it started
    mailshot_id = _mailshot(settings, "R" * 150, n=4)
    refused = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    assert refused.status_code == 422
    assert "150 characters" in refused.json()["error"]["details"][0]["message"]

    renamed = client.patch(
        f"{API}/mailshots/{mailshot_id}", json={"name": "Spring news"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    asked = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    assert asked.status_code == 202 and asked.json()["warnings"] == []

    def ended() -> dict[str, Any] | None:
        st: dict[str, Any] = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=admin).json()
        return st if st["state"] in ("synchronised", "failed") else None

    final = _wait(ended)
    assert final["state"] == "synchronised", final
    campaign = client.get(
        f"/esp/api/v1/integrated-campaigns/{mailshot_id}", headers=_h(keys.esp_admin)
    ).json()
    assert campaign["name"] == "Spring news"
    assert campaign["audience_count"] == 4


def test_the_cheap_probe_agrees_with_the_audience_rules(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """The EXISTS probe of Synchronise and the full audience count never disagree on
    whether anybody is left, whatever leaves people out."""
    from mailshot.crm.services.audience import recount
    from mailshot.crm.sync.preflight import Audience, Draft, probe_audience

    admin = _h(keys.crm_admin)
    people = {
        "ok": {"email": "ok@example.com"},
        "opted": {"email": "opted@example.com", "no_email": True},
        "none": {},
        "bad": {"email": "not an address"},
    }
    ids = {
        tag: client.post(f"{API}/people", json={"first_name": tag, **p}, headers=admin).json()["id"]
        for tag, p in people.items()
    }
    engine = crm_engine(settings)
    sessions = make_sessionmaker(engine)
    for members, subscribed, gdpr in (
        (["ok"], True, False),
        (["ok"], False, False),
        (["ok"], True, True),
        (["opted", "none", "bad"], True, False),
        (["ok", "opted"], True, False),
        ([], True, False),
    ):
        client.put(f"{API}/settings", json={"gdpr_mode": gdpr}, headers=admin)
        lst = client.post(f"{API}/mailing-lists", json={"name": "P"}, headers=admin).json()["id"]
        if members:
            client.post(
                f"{API}/mailing-lists/{lst}/members",
                json={"person_ids": [ids[m] for m in members], "subscribed": subscribed},
                headers=admin,
            )
        made = client.post(
            f"{API}/mailshots",
            json={"name": "Probe", "mailing_list_id": lst, "audience_source": "mailing_list"},
            headers=admin,
        ).json()["id"]
        with sessions() as s:
            mailshot = s.get(Mailshot, made)
            assert mailshot is not None
            probed = probe_audience(s, Draft.of(mailshot))
            counted = recount(s, mailshot).included
        assert (probed is Audience.HAS_PEOPLE) == (counted > 0), (members, subscribed, gdpr)
    engine.dispose()
