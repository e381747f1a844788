"""The HTTP edge of both parts, in-process (issue 15): request bodies over their limit are
refused with 413 before they are read and before authentication, on the combined server and
on each part served alone; an unhandled exception is a catalogued 500 that closes the
connection; redirects and page links never carry the Host header the client sent."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailshot.app.server import create_app
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm import models as crm_models
from mailshot.crm.app import create_crm_app
from mailshot.esp.app import create_esp_app
from tests.conftest import Keys
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in

LIMIT = 64 * 1024


@pytest.fixture
def small(settings: Settings) -> Settings:
    """The test's settings with small limits, so that a test body can pass them."""
    return settings.model_copy(
        update={
            "max_body_bytes": LIMIT,
            "max_upload_bytes": 4 * LIMIT,
            "max_chunk_bytes": 2 * LIMIT,
        }
    )


def asgi_post(
    app: FastAPI, path: str, chunks: list[bytes], headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes, int]:
    """POST ``chunks`` to ``app`` as a server would, counting the body bytes the app took;
    returns the status, the headers, the body and that count."""
    taken = 0
    pending = list(chunks)
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if not pending:
            await anyio.sleep_forever()
        chunk = pending.pop(0)
        taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }

    async def run() -> None:
        with anyio.fail_after(30):
            await app(scope, receive, send)

    anyio.run(run)
    return answer["status"], answer["headers"], answer["body"], taken


def refusals(settings: Settings) -> int:
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        count = s.scalar(select(func.count()).select_from(crm_models.KeyRefusalRecord))
    engine.dispose()
    return int(count or 0)


@pytest.fixture
def apps(small: Settings) -> Iterator[dict[str, FastAPI]]:
    """The combined server and each part alone, with their lifespans running."""
    made = {"server": create_app(small), "crm": create_crm_app(small), "esp": create_esp_app(small)}
    clients = [TestClient(app) for app in made.values()]
    for c in clients:
        c.__enter__()
    yield made
    for c in clients:
        c.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("app_name", "path"),
    [
        ("server", "/crm/api/v1/people"),
        ("server", "/esp/api/v1/contacts"),
        ("crm", "/api/v1/people"),
        ("esp", "/api/v1/contacts"),
        ("server", "/crm/login"),  # a page's form
    ],
)
def test_a_declared_body_over_the_limit_is_refused_unread_and_unauthenticated(
    apps: dict[str, FastAPI], small: Settings, app_name: str, path: str
) -> None:
    before = refusals(small)
    status, headers, body, taken = asgi_post(
        apps[app_name],
        path,
        [b"x" * LIMIT, b"x" * LIMIT],
        {"content-type": "application/json", "content-length": str(2 * LIMIT)},
    )
    assert status == 413
    assert taken == 0  # not one byte of the body was read
    error = json.loads(body)["error"]
    assert error["code"] == "REQUEST_TOO_LARGE"
    assert str(LIMIT) in error["message"] and "64 KiB" in error["message"]
    assert "MAILSHOT_MAX_BODY_BYTES" in error["fix"]
    assert headers["content-type"] == "application/json"
    assert refusals(small) == before  # no key was looked at: nothing was recorded


@pytest.mark.parametrize("app_name", ["server", "crm"])
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    apps: dict[str, FastAPI], small: Settings, app_name: str
) -> None:
    path = "/crm/api/v1/people" if app_name == "server" else "/api/v1/people"
    before = refusals(small)
    chunks = [b"x" * 16 * 1024] * 64  # 1 MiB in all, no Content-Length
    status, _, body, taken = asgi_post(apps[app_name], path, chunks, {})
    assert status == 413
    assert json.loads(body)["error"]["code"] == "REQUEST_TOO_LARGE"
    assert taken <= LIMIT + 16 * 1024  # the reading stopped at the limit
    assert refusals(small) == before


def test_a_body_within_the_limit_goes_through(client: TestClient, keys: Keys) -> None:
    resp = client.post(
        "/crm/api/v1/organisations",
        json={"name": "N" * 200},
        headers={"Authorization": f"Bearer {keys.crm_admin}"},
    )
    assert resp.status_code == 201, resp.text


def test_a_csv_import_has_the_upload_limit_and_leaves_nothing_behind(
    small: Settings, keys: Keys
) -> None:
    auth = {"Authorization": f"Bearer {keys.crm_admin}", "content-type": "text/csv"}
    line = b"someone.%d@example.com,Some,One\n"
    fits = b"email,first_name,last_name\n" + b"".join(line % i for i in range(4000))
    assert LIMIT < len(fits) < 4 * LIMIT
    with TestClient(create_app(small)) as c:
        accepted = c.post("/crm/api/v1/imports/people", content=fits, headers=auth)
        assert accepted.status_code == 202, accepted.text

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield fits
            yield fits * 3

        refused = c.post("/crm/api/v1/imports/people", content=chunked(), headers=auth)
    assert refused.status_code == 413
    assert "MAILSHOT_MAX_UPLOAD_BYTES" in refused.json()["error"]["fix"]
    assert not list((small.data_dir / "imports").glob("*.part"))


def test_a_chunk_of_recipients_has_the_chunk_limit(small: Settings, keys: Keys) -> None:
    auth = {"Authorization": f"Bearer {keys.esp_integration}"}
    rows = [[i, i + 1, f"p{i}@example.com", "A" * 20, "B" * 20] for i in range(1500)]
    chunk = {"snapshot": 1, "columns": ["seq", "person_id", "email", "first_name", "last_name"]}
    with TestClient(create_app(small)) as c:
        made = c.put(
            "/esp/api/v1/integrated-campaigns/9",
            json={"snapshot": 1, "name": "C", "subject": "S", "from_name": "F"}
            | {"from_address": "f@example.com", "html": "<p>x</p>"}
            | {"crm_mailshot_uid": "00000000-0000-4000-8000-000000000009"},
            headers=auth,
        )
        assert made.status_code in (200, 201), made.text
        url = "/esp/api/v1/integrated-campaigns/9/recipients"
        body = json.dumps(chunk | {"rows": rows}).encode()
        assert LIMIT < len(body) < 2 * LIMIT
        ok = c.post(url, content=body, headers=auth | {"content-type": "application/json"})
        assert ok.status_code == 200, ok.text
        big = json.dumps(chunk | {"rows": rows * 2}).encode()
        refused = c.post(url, content=big, headers=auth | {"content-type": "application/json"})
    assert refused.status_code == 413
    assert "MAILSHOT_MAX_CHUNK_BYTES" in refused.json()["error"]["fix"]


# ---- an unhandled exception ---------------------------------------------------------------
def test_an_unhandled_exception_is_a_catalogued_500_that_closes_the_connection(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("the disk caught fire")

    app.state.crm.add_api_route("/api/v1/boom", boom)
    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="mailshot.core.errors"):
        resp = c.get("/crm/api/v1/boom")
    assert resp.status_code == 500
    assert resp.headers["connection"] == "close"
    error = resp.json()["error"]
    assert error["code"] == "INTERNAL_ERROR"
    reference = error["params"]["reference"]
    assert reference in error["message"] and reference in error["fix"]
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "the disk caught fire" in str(logged[0].exc_info[1])
    assert "fire" not in resp.text  # the details are in the log, not in the answer


# ---- the Host header in redirects and links -----------------------------------------------
FORGED = "evil.example"


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


def _no_forged_host(resp: Any) -> None:
    assert FORGED not in resp.headers.get("location", ""), resp.headers["location"]
    assert FORGED not in resp.text


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/", "/crm/"),
        ("/crm/mailshots", "/crm/login?next=/crm/mailshots"),
        ("/esp/campaigns", "/esp/login?next=/esp/campaigns"),
        ("/crm/people/", "/crm/people"),  # Starlette's trailing-slash redirect
        ("/crm/api/v1/people/", "/crm/api/v1/people"),
    ],
)
def test_redirects_do_not_carry_the_host_header(
    client: TestClient, path: str, location: str
) -> None:
    resp = client.get(path, headers={"Host": FORGED}, follow_redirects=False)
    assert resp.status_code in (303, 307), resp.text
    assert resp.headers["location"] == location
    _no_forged_host(resp)


def test_signing_in_and_the_pages_never_carry_the_host_header(
    client: TestClient, users: PageUsers
) -> None:
    client.headers["Host"] = FORGED
    page = client.get("/crm/login?next=/crm/people")
    _no_forged_host(page)
    signed_in = client.post(
        "/crm/login",
        data={
            "email": users.crm_admin,
            "password": users.password,
            "csrf_token": csrf_of(page.text),
            "next": "",
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/crm/"
    for path in ("/crm/", "/crm/people", "/crm/mailshots", "/crm/api-keys", "/crm/people/new"):
        shown = client.get(path)
        assert shown.status_code == 200, path
        _no_forged_host(shown)
    form = client.get("/crm/people/new")
    made = client.post(
        "/crm/people/new",
        data={"first_name": "Ann", "email": "ann@example.com", "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert made.headers["location"].startswith("/crm/people/")
    _no_forged_host(made)
    sign_in(client, "esp", users.esp_admin)
    _no_forged_host(client.get("/esp/integration"))
