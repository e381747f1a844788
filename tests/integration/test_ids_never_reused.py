"""No id is ever given to a second row, on either engine: a deleted mailshot's, person's or
user's id is not the next one's (SQLite ``AUTOINCREMENT``, PostgreSQL's sequences), so a
new mailshot cannot take over the ESP campaign of a deleted one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mailshot.core.db.engine import make_unpooled_engine
from mailshot.core.db.model import IdMixin
from mailshot.core.settings import Settings
from mailshot.crm import models as crm_models
from mailshot.esp import models as esp_models
from tests.conftest import Keys
from tests.support.inprocess_bridge import in_process_pool, work_all

CRM = "/crm/api/v1"
ESP = "/esp/api/v1"


class Api:
    def __init__(self, client: TestClient, keys: Keys) -> None:
        self.client = client
        self.crm_h = {"Authorization": f"Bearer {keys.crm_admin}"}
        self.esp_h = {"Authorization": f"Bearer {keys.esp_admin}"}

    def crm(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        r = self.client.request(method, f"{CRM}/{path}", headers=self.crm_h, **kw)
        assert r.status_code == expect if expect else r.status_code < 300, r.text
        return r.json() if r.content else None

    def esp(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        r = self.client.request(method, f"{ESP}/{path}", headers=self.esp_h, **kw)
        assert r.status_code == expect if expect else r.status_code < 300, r.text
        return r.json() if r.content else None


def _id_tables(base: Any) -> list[str]:
    return sorted(
        m.local_table.name for m in base.registry.mappers if issubclass(m.class_, IdMixin)
    )


@pytest.mark.parametrize(
    ("part", "base"), [("crm", crm_models.Base), ("esp", esp_models.Base)], ids=["crm", "esp"]
)
def test_every_id_table_of_the_migrated_sqlite_database_is_autoincrement(
    tmp_path: Any, part: str, base: Any
) -> None:
    from mailshot.core.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(part, url)  # type: ignore[arg-type]
    engine = make_unpooled_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        ddl = {str(name): str(sql) for name, sql in rows}
    engine.dispose()
    tables = _id_tables(base)
    assert len(tables) >= 6
    plain = [t for t in tables if "AUTOINCREMENT" not in ddl[t]]
    assert plain == [], f"ids of {plain} would be reused after a delete"


def test_a_deleted_rows_id_is_never_given_to_the_next_row(client: TestClient, keys: Keys) -> None:
    api = Api(client, keys)
    made = {
        "mailshots": {"name": "M"},
        "people": {"first_name": "P", "email": "p@example.com"},
        "mailing-lists": {"name": "L"},
        "templates": {"name": "T"},
        "organisations": {"name": "O"},
        "users": {"email": "u@example.com", "name": "U", "role": "marketer"},
    }
    for path, body in made.items():
        first = api.crm("POST", path, json=body)["id"]
        api.crm("DELETE", f"{path}/{first}")
        second = api.crm("POST", path, json=body)["id"]
        assert second > first, path
    contact = api.esp("POST", "contacts", json={"email": "c@example.com"})["id"]
    api.esp("DELETE", f"contacts/{contact}")
    assert api.esp("POST", "contacts", json={"email": "c@example.com"})["id"] > contact


def _mailshot(api: Api, name: str, people: list[int]) -> int:
    lst = api.crm("POST", "mailing-lists", json={"name": f"List of {name}"})["id"]
    api.crm("POST", f"mailing-lists/{lst}/members", json={"person_ids": people})
    body = {
        "name": name,
        "subject": "Hello",
        "from_name": "Marketing",
        "from_address": "news@example.com",
        "html": "<p>Hi</p>",
        "audience_source": "mailing_list",
        "mailing_list_id": lst,
    }
    return int(api.crm("POST", "mailshots", json=body)["id"])


def test_a_new_mailshot_does_not_take_over_a_deleted_mailshots_campaign(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    api = Api(client, keys)
    people = [
        api.crm("POST", "people", json={"first_name": f"P{i}", "email": f"p{i}@example.com"})["id"]
        for i in range(3)
    ]
    pool = in_process_pool(client.app, keys)
    old = _mailshot(api, "Spring sale", people)
    api.crm("POST", f"mailshots/{old}/synchronise")
    work_all(pool)
    assert api.crm("GET", f"mailshots/{old}/sync")["state"] == "synchronised"
    api.crm("DELETE", f"mailshots/{old}")

    new = _mailshot(api, "Autumn sale", people[:1])
    assert new != old
    api.crm("POST", f"mailshots/{new}/synchronise")
    work_all(pool)
    assert api.crm("GET", f"mailshots/{new}/sync")["state"] == "synchronised"

    kept = api.esp("GET", f"integrated-campaigns/{old}")
    assert (kept["name"], kept["audience_count"]) == ("Spring sale", 3)
    assert api.esp("GET", f"integrated-campaigns/{new}")["name"] == "Autumn sale"
    pool.crm.http.close()
    pool.esp.http.close()


def test_the_esp_refuses_a_mailshot_of_another_crm_database_with_the_same_id(
    client: TestClient, keys: Keys
) -> None:
    """A CRM database recreated against the same ESP gives its mailshots ids the ESP has
    campaigns for: that sync fails for good with the ESP's reason, the campaign keeps its
    mailshot, and the other syncs carry on."""
    api = Api(client, keys)
    people = [
        api.crm("POST", "people", json={"first_name": f"P{i}", "email": f"p{i}@example.com"})["id"]
        for i in range(2)
    ]
    clash = _mailshot(api, "Clash", people)
    fine = _mailshot(api, "Fine", people)
    elsewhere = "00000000-0000-4000-8000-00000000beef"
    body = {
        "snapshot": 1,
        "crm_mailshot_uid": elsewhere,
        "name": "Of the old CRM",
        "subject": "Old",
        "from_name": "Old",
        "from_address": "old@example.com",
        "text": "old",
    }
    api.esp("PUT", f"integrated-campaigns/{clash}", json=body)
    pool = in_process_pool(client.app, keys)
    for mailshot in (clash, fine):
        api.crm("POST", f"mailshots/{mailshot}/synchronise")
    work_all(pool)
    pool.crm.http.close()
    pool.esp.http.close()

    status = api.crm("GET", f"mailshots/{clash}/sync")
    assert status["state"] == "failed", status
    assert status["last_error"]["code"] == "CAMPAIGN_OF_ANOTHER_MAILSHOT", status
    uid = api.crm("GET", f"mailshots/{clash}")["uid"]
    assert uid in status["last_error"]["message"] and elsewhere in status["last_error"]["message"]
    assert status["last_error"]["fix"]
    kept = api.esp("GET", f"integrated-campaigns/{clash}")
    assert (kept["name"], kept["crm_mailshot_uid"]) == ("Of the old CRM", elsewhere)

    assert api.crm("GET", f"mailshots/{fine}/sync")["state"] == "synchronised"
    made = api.esp("GET", f"integrated-campaigns/{fine}")
    assert made["crm_mailshot_uid"] == api.crm("GET", f"mailshots/{fine}")["uid"]
