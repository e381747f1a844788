"""The API documentation (issue 15, items 13 and 17): the docs pages load Swagger UI from
this server only (no CDN, no external URL), and both OpenAPI documents declare the bearer
scheme and the error answers the API gives, with the catalogue's error body."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailshot.core.settings import Settings
from mailshot.esp.app import create_esp_app
from tests.conftest import Keys

PARTS = ["crm", "esp"]
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("part", PARTS)
def test_the_docs_page_and_everything_it_loads_come_from_this_server(
    client: TestClient, part: str
) -> None:
    page = client.get(f"/{part}/api/v1/docs")
    assert page.status_code == 200
    assert "://" not in page.text  # no CDN, no other site
    refs = [a or b for a, b in _REFERENCES.findall(page.text)]
    assert {r.rsplit("/", 1)[-1] for r in refs} == {
        "swagger-ui.css",
        "favicon.png",
        "swagger-ui-bundle.js",
        "openapi.json",
    }
    for ref in refs:
        assert ref.startswith(f"/{part}/api/v1/"), ref
        got = client.get(ref)
        assert got.status_code == 200, ref
        assert got.content
    js = client.get(f"/{part}/api/v1/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in js.text
    assert "validatorUrl: null" in page.text.replace('"validatorUrl"', "validatorUrl")


def test_the_docs_page_of_a_part_served_alone(settings: Settings) -> None:
    with TestClient(create_esp_app(settings)) as c:
        page = c.get("/api/v1/docs")
        assert 'href="/api/v1/docs/static/swagger-ui.css"' in page.text
        assert c.get("/api/v1/docs/static/swagger-ui.css").status_code == 200


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


@pytest.mark.parametrize("part", PARTS)
def test_the_openapi_document_declares_the_bearer_scheme_and_the_error_answers(
    client: TestClient, part: str
) -> None:
    doc = client.get(f"/{part}/api/v1/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert [s for s in schemes.values() if s == s | {"type": "http", "scheme": "bearer"}]
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    info = doc["components"]["schemas"]["ErrorInfo"]
    assert {"code", "message", "fix", "details"} <= set(info["properties"])
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/Error"}
    secured = 0
    for method, path, op in _operations(doc):
        responses = op["responses"]
        for status, answer in responses.items():
            if status.startswith(("4", "5")):
                assert answer["content"]["application/json"]["schema"] == ref, (path, status)
        if "security" in op:
            secured += 1
            assert {"401", "403"} <= set(responses), (method, path)
        if op.get("parameters") or "requestBody" in op:
            assert {"404", "422"} <= set(responses), (method, path)
        if method in ("post", "put", "patch", "delete"):
            assert {"409", "413"} <= set(responses), (method, path)
    assert secured > 10
    ids = [
        p["schema"]
        for _, path, op in _operations(doc)
        for p in op.get("parameters", [])
        if p["in"] == "path" and p["name"].endswith("_id")
    ]
    assert ids and all(s == s | {"minimum": 1, "maximum": 2**63 - 1} for s in ids)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "AUTH_MISSING"),
        ("Basic abc", "AUTH_MALFORMED"),
        ("Bearer mscrm_x_y", "AUTH_UNKNOWN_KEY"),
    ],
)
def test_the_bearer_scheme_keeps_the_refusal_codes(
    client: TestClient, keys: Keys, header: str | None, code: str
) -> None:
    headers = {"Authorization": header} if header else {}
    resp = client.get("/crm/api/v1/people", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == code
    assert resp.headers["www-authenticate"].startswith("Bearer")
    ok = client.get("/crm/api/v1/people", headers={"Authorization": f"Bearer {keys.crm_admin}"})
    assert ok.status_code == 200
