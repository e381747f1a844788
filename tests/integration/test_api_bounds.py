"""Numbers past the databases' 64-bit integers and nulls for fields that cannot be empty are
refused with 422 naming the field, on both APIs and both engines (issue 15, item 7): before,
they reached the database and came back as 500 (``OverflowError``, NOT NULL)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError
from sqlalchemy import inspect

from mailshot.core.access.schemas import ApiKeyUpdate
from mailshot.crm import models as crm
from mailshot.crm.schemas.compliance import ComplianceUpdate
from mailshot.crm.schemas.mailing_lists import MailingListUpdate
from mailshot.crm.schemas.mailshots import MailshotUpdate
from mailshot.crm.schemas.marketing_campaigns import CampaignUpdate
from mailshot.crm.schemas.organisations import OrganisationUpdate
from mailshot.crm.schemas.people import PersonUpdate
from mailshot.crm.schemas.templates import TemplateUpdate
from mailshot.crm.schemas.users import UserUpdate as CrmUserUpdate
from mailshot.esp import models as esp
from mailshot.esp.schemas.access import UserUpdate as EspUserUpdate
from tests.conftest import Keys

TOO_BIG = 2**63  # one past the largest BIGINT
HUGE = 14327553780626155494178816  # what the fuzzer sent


def _problem_fields(resp: Any) -> list[str]:
    assert resp.status_code == 422, resp.text
    body = resp.json()["error"]
    return [d["field"] for d in body.get("details", [])]


def _cursor(after: int) -> str:
    text = json.dumps({"after": after}).encode()  # orjson cannot write past 64 bits
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/esp/api/v1/contacts/{TOO_BIG}", "contact_id"),
        (f"/esp/api/v1/campaigns/{HUGE}", "campaign_id"),
        (f"/esp/api/v1/integrated-campaigns/{TOO_BIG}", "crm_mailshot_id"),
        (f"/esp/api/v1/campaigns/1/recipients?snapshot={TOO_BIG}", "snapshot"),
        (f"/esp/api/v1/api-keys?user_id={TOO_BIG}", "user_id"),
        (f"/crm/api/v1/people/{HUGE}", "person_id"),
        (f"/crm/api/v1/people?organisation_id={TOO_BIG}", "organisation_id"),
        (f"/crm/api/v1/mailing-lists/{TOO_BIG}/members", "list_id"),
        (f"/crm/api/v1/sync/jobs/{TOO_BIG}", "job_id"),
        (f"/crm/api/v1/sync/jobs/1/recipients?first_seq={TOO_BIG}&last_seq=1", "first_seq"),
        (f"/crm/api/v1/key-refusals?key_id={TOO_BIG}", "key_id"),
        ("/crm/api/v1/people/0", "person_id"),
    ],
)
def test_ids_past_64_bits_in_paths_and_queries_are_422(
    client: TestClient, keys: Keys, path: str, field: str
) -> None:
    part = path.split("/")[1]
    key = {
        "crm": keys.crm_integration if "/sync/jobs/" in path else keys.crm_admin,
        "esp": keys.esp_admin,
    }[part]
    resp = client.get(path, headers={"Authorization": f"Bearer {key}"})
    assert field in _problem_fields(resp)
    assert resp.json()["error"]["code"] == "VALIDATION_FAILED"


def test_a_cursor_past_64_bits_is_not_one_of_ours(crm: TestClient) -> None:
    resp = crm.get("people", params={"cursor": _cursor(TOO_BIG)})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "INVALID_CURSOR"


def test_ids_past_64_bits_in_crm_bodies_are_422(crm: TestClient) -> None:
    assert "organisation_id" in _problem_fields(
        crm.post("people", json={"email": "a@example.com", "organisation_id": TOO_BIG})
    )
    lst = crm.post("mailing-lists", json={"name": "L"}).json()
    assert "person_ids.0" in _problem_fields(
        crm.post(f"mailing-lists/{lst['id']}/members", json={"person_ids": [HUGE]})
    )
    assert "mailing_list_id" in _problem_fields(
        crm.post("mailshots", json={"name": "M", "mailing_list_id": TOO_BIG})
    )
    assert "filter.organisation_id.0" in _problem_fields(
        crm.post(
            "mailing-lists",
            json={"name": "D", "kind": "dynamic", "filter": {"organisation_id": [TOO_BIG]}},
        )
    )
    assert "user_id" in _problem_fields(crm.post("api-keys", json={"name": "k", "user_id": HUGE}))


def test_ids_past_64_bits_in_esp_bodies_are_422(esp: TestClient) -> None:
    assert "crm_person_id" in _problem_fields(
        esp.post("contacts", json={"email": "a@example.com", "crm_person_id": TOO_BIG})
    )
    assert "snapshot" in _problem_fields(
        esp.put("integrated-campaigns/7", json={"snapshot": TOO_BIG, "name": "C"})
    )
    assert "hard_bounces" in _problem_fields(
        esp.post(
            "suppressions",
            json={"email": "b@example.com", "reason": "bounced", "hard_bounces": 2**40},
        )
    )
    made = esp.put(
        "integrated-campaigns/7",
        json={"snapshot": 1, "name": "C", "subject": "S", "from_name": "F"}
        | {"from_address": "f@example.com", "html": "<p>x</p>"}
        | {"crm_mailshot_uid": "00000000-0000-4000-8000-000000000009"},
    )
    assert made.status_code in (200, 201), made.text
    columns = ["seq", "person_id", "email"]
    chunk = {"snapshot": 1, "columns": columns, "rows": [[0, HUGE, "c@example.com"]]}
    resp = esp.post("integrated-campaigns/7/recipients", json=chunk)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "RECIPIENT_ROWS_INVALID"
    assert resp.json()["error"]["details"][0]["field"] == "rows.0.person_id"
    too_late = {"snapshot": TOO_BIG, "columns": columns, "rows": [[0, 5, "c@example.com"]]}
    assert "snapshot" in _problem_fields(
        esp.post("integrated-campaigns/7/recipients", json=too_late)
    )


def test_free_form_json_past_64_bits_or_too_deep_is_422(client: TestClient, keys: Keys) -> None:
    auth = {"Authorization": f"Bearer {keys.crm_integration}"}
    url = "/crm/api/v1/integration/esp-limits"
    big = client.put(url, json={"limits": {"campaign": {"name_max_length": HUGE}}}, headers=auth)
    assert _problem_fields(big) == ["limits"]
    assert big.json()["error"]["details"][0]["rule"] == "int_range"
    deep: dict[str, object] = {}
    for _ in range(40):
        deep = {"d": deep}
    nested = client.put(url, json={"limits": deep}, headers=auth)
    assert _problem_fields(nested) == ["limits"]
    fine = client.put(url, json={"limits": {"campaign": {"name_max_length": 100}}}, headers=auth)
    assert fine.status_code == 200, fine.text


def test_a_worker_heartbeat_past_32_bits_is_422(client: TestClient, keys: Keys) -> None:
    resp = client.post(
        "/crm/api/v1/integration/heartbeat",
        json={"worker_id": "w", "active_units": TOO_BIG},
        headers={"Authorization": f"Bearer {keys.crm_integration}"},
    )
    assert _problem_fields(resp) == ["active_units"]


def test_patch_null_for_a_field_that_cannot_be_empty_is_422_crm(crm: TestClient) -> None:
    org = crm.post("organisations", json={"name": "Acme"}).json()
    assert _problem_fields(crm.patch(f"organisations/{org['id']}", json={"name": None})) == ["name"]
    assert crm.get(f"organisations/{org['id']}").json()["name"] == "Acme"


def test_patch_null_for_a_field_that_cannot_be_empty_is_422_esp(esp: TestClient) -> None:
    user = esp.post(
        "users", json={"email": "m@example.com", "name": "M", "role": "marketer"}
    ).json()
    assert _problem_fields(esp.patch(f"users/{user['id']}", json={"enabled": None})) == ["enabled"]
    assert esp.get("users").json()["items"][-1]["enabled"] is True


#: Every PATCH schema and the tables whose rows it changes.
PATCHES: list[tuple[type[BaseModel], list[Any]]] = [
    (OrganisationUpdate, [crm.Organisation]),
    (PersonUpdate, [crm.Person]),
    (MailingListUpdate, [crm.MailingList]),
    (CampaignUpdate, [crm.MarketingCampaign]),
    (ComplianceUpdate, [crm.ComplianceRecord]),
    (TemplateUpdate, [crm.Template]),
    (MailshotUpdate, [crm.Mailshot]),
    (CrmUserUpdate, [crm.User]),
    (EspUserUpdate, [esp.EspUser]),
    (ApiKeyUpdate, [crm.ApiKey, esp.EspApiKey]),
]


@pytest.mark.parametrize(("schema", "tables"), PATCHES, ids=lambda p: getattr(p, "__name__", ""))
def test_every_patch_schema_refuses_null_where_the_column_is_not_null(
    schema: type[BaseModel], tables: list[Any]
) -> None:
    checked = 0
    for table in tables:
        columns = {c.key: c for c in inspect(table).columns}
        for name in schema.model_fields:
            column = columns.get(name)
            if column is None or column.nullable:
                continue
            checked += 1
            with pytest.raises(ValidationError) as refused:
                schema.model_validate({name: None})
            assert [e["loc"] for e in refused.value.errors()] == [(name,)], name
    assert checked, f"{schema.__name__} has no NOT NULL column to check"


def _unbounded(schema: dict[str, Any], components: dict[str, Any], where: str) -> list[str]:
    """Where an integer of ``schema`` has no maximum (following $refs, each once)."""
    out: list[str] = []
    todo: list[tuple[dict[str, Any], str, frozenset[str]]] = [(schema, where, frozenset())]
    while todo:
        node, at, seen = todo.pop()
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                todo.append((components[name], f"{at}>{name}", seen | {name}))
            continue
        if node.get("type") == "integer" and "maximum" not in node:
            out.append(at)
        todo += [(s, at, seen) for key in ("anyOf", "oneOf", "allOf") for s in node.get(key, [])]
        todo += [(s, f"{at}.{p}", seen) for p, s in node.get("properties", {}).items()]
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                todo.append((node[key], f"{at}[]", seen))
    return out


@pytest.mark.parametrize("part", ["crm", "esp"])
def test_every_integer_a_request_can_carry_is_bounded(client: TestClient, part: str) -> None:
    doc = client.get(f"/{part}/api/v1/openapi.json").json()
    components = doc["components"]["schemas"]
    unbounded = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                unbounded += _unbounded(p["schema"], components, f"{method} {path} {p['name']}")
            for content in op.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded(content["schema"], components, f"{method} {path} body")
    assert not unbounded
