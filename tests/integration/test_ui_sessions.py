"""Page sessions kept in the database: a cookie is an opaque token whose session dies with
its user, at sign-out, when the user is disabled or their password is set, and after the
idle and absolute limits; cookies are Secure over HTTPS. Real app (TestClient), both
database backends."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from mailshot.app.server import create_app
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import (
    make_engine,
    make_sessionmaker,
    make_unchecked_writer,
    make_unpooled_engine,
)
from mailshot.core.settings import Settings
from mailshot.crm.models import User, WebSession
from mailshot.crm.services import access as crm_access
from mailshot.esp.models import EspUser, EspWebSession
from tests.conftest import Keys
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in

CRM_COOKIE = "mailshot_crm_session"


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


@contextmanager
def db(url: str) -> Iterator[Session]:
    engine = make_unpooled_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            yield s
    finally:
        engine.dispose()


def user_id(settings: Settings, email: str, model: Any = User) -> int:
    url = settings.crm_db_url() if model is User else settings.esp_db_url()
    with db(url) as s:
        found = s.scalar(select(model.id).where(model.email == email))
    assert found is not None
    return int(found)


def session_rows(settings: Settings, uid: int, model: Any = WebSession) -> int:
    url = settings.crm_db_url() if model is WebSession else settings.esp_db_url()
    with db(url) as s:
        return int(s.scalar(select(func.count()).where(model.user_id == uid)) or 0)


def browser_with(client: TestClient, cookie: str, name: str = CRM_COOKIE) -> TestClient:
    """A second browser of the same app holding a copy of ``cookie``."""
    other = TestClient(client.app)
    other.cookies.set(name, cookie)
    return other


def signed_in(other: TestClient, path: str = "/crm/mailshots") -> bool:
    resp = other.get(path, follow_redirects=False)
    assert resp.status_code in (200, 303), resp.status_code
    return resp.status_code == 200


def test_a_deleted_users_cookie_does_not_sign_in_a_new_user_given_the_same_id(
    client: TestClient, users: PageUsers, keys: Keys, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_marketer)
    cookie = client.cookies.get(CRM_COOKIE)
    assert cookie and signed_in(client)
    old_id = user_id(settings, users.crm_marketer)
    gone = client.delete(
        f"/crm/api/v1/users/{old_id}", headers={"Authorization": f"Bearer {keys.crm_admin}"}
    )
    assert gone.status_code == 204
    # An engine that hands out the deleted id again (SQLite without AUTOINCREMENT does):
    # a new administrator gets it.
    with db(settings.crm_db_url()) as s:
        s.add(User(id=old_id, email="new-admin@example.com", name="New", role="admin"))
        s.commit()
    old = browser_with(client, cookie)
    assert not signed_in(old, "/crm/users")
    assert session_rows(settings, old_id) == 0


def test_the_foreign_key_ends_sessions_of_a_user_deleted_by_any_path(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_marketer)
    cookie = client.cookies.get(CRM_COOKIE)
    assert cookie
    old_id = user_id(settings, users.crm_marketer)
    with db(settings.crm_db_url()) as s:
        s.execute(User.__table__.delete().where(User.id == old_id))
        s.add(User(id=old_id, email="new-admin@example.com", name="New", role="admin"))
        s.commit()
    assert not signed_in(browser_with(client, cookie), "/crm/users")


def test_sign_out_ends_the_session_for_every_copy_of_its_cookie(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_admin)
    cookie = client.cookies.get(CRM_COOKIE)
    assert cookie
    token = csrf_of(client.get("/crm/mailshots").text)
    out = client.post("/crm/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert CRM_COOKIE not in client.cookies  # the browser is told to forget it
    assert not signed_in(browser_with(client, cookie))  # and a copy kept is worthless
    assert session_rows(settings, user_id(settings, users.crm_admin)) == 0


def test_disabling_a_user_ends_every_session_of_theirs(
    client: TestClient, users: PageUsers, keys: Keys, settings: Settings
) -> None:
    first, second = TestClient(client.app), TestClient(client.app)
    sign_in(first, "crm", users.crm_marketer)
    sign_in(second, "crm", users.crm_marketer)
    uid = user_id(settings, users.crm_marketer)
    assert session_rows(settings, uid) == 2
    admin = {"Authorization": f"Bearer {keys.crm_admin}"}
    off = client.patch(f"/crm/api/v1/users/{uid}", json={"enabled": False}, headers=admin)
    assert off.status_code == 200
    assert session_rows(settings, uid) == 0
    # Enabling the user again does not bring the old sessions back.
    on = client.patch(f"/crm/api/v1/users/{uid}", json={"enabled": True}, headers=admin)
    assert on.status_code == 200
    assert not signed_in(first)
    assert not signed_in(second)


def test_disabling_a_user_on_the_users_page_ends_their_sessions(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    marketer = TestClient(client.app)
    sign_in(marketer, "crm", users.crm_marketer)
    sign_in(client, "crm", users.crm_admin)
    uid = user_id(settings, users.crm_marketer)
    token = csrf_of(client.get("/crm/users").text)
    # The form sends the role and no 'enabled' box: unticked, the user is disabled.
    done = client.post(
        f"/crm/users/{uid}",
        data={"csrf_token": token, "enabled": "", "role": "marketer"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with db(settings.crm_db_url()) as s:
        assert s.scalar(select(User.enabled).where(User.id == uid)) is False
    assert signed_in(client)  # the admin's own session is untouched
    assert session_rows(settings, uid) == 0
    assert not signed_in(marketer)


def test_disabling_an_esp_user_ends_their_sessions(
    client: TestClient, users: PageUsers, keys: Keys, settings: Settings
) -> None:
    sign_in(client, "esp", users.esp_marketer)
    cookie = client.cookies.get("mailshot_esp_session")
    assert cookie
    uid = user_id(settings, users.esp_marketer, EspUser)
    assert session_rows(settings, uid, EspWebSession) == 1
    admin = {"Authorization": f"Bearer {keys.esp_admin}"}
    off = client.patch(f"/esp/api/v1/users/{uid}", json={"enabled": False}, headers=admin)
    assert off.status_code == 200, off.text
    assert session_rows(settings, uid, EspWebSession) == 0
    client.patch(f"/esp/api/v1/users/{uid}", json={"enabled": True}, headers=admin)
    old = browser_with(client, cookie, "mailshot_esp_session")
    assert not signed_in(old, "/esp/campaigns")


def test_a_role_change_keeps_the_session_and_counts_at_the_next_click(
    client: TestClient, users: PageUsers, keys: Keys, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_marketer)
    assert client.get("/crm/users").status_code == 403
    uid = user_id(settings, users.crm_marketer)
    admin = {"Authorization": f"Bearer {keys.crm_admin}"}
    assert client.patch(
        f"/crm/api/v1/users/{uid}", json={"role": "admin"}, headers=admin
    ).is_success
    assert client.get("/crm/users").status_code == 200
    assert session_rows(settings, uid) == 1


PLANTED = "planted-session-token-0123456789"


def _orphan_session(url: str, uid: int) -> None:
    """A session row whose user is gone (what a database without the cascade would keep),
    written with the foreign keys unchecked."""
    engine = make_engine(url)
    writer = make_unchecked_writer(engine)
    with make_sessionmaker(writer)() as s:
        if writer.dialect.name != "sqlite":
            s.execute(text("SET session_replication_role = replica"))
        _add_orphan(s, uid)
    writer.dispose()
    engine.dispose()


def _add_orphan(s: Session, uid: int) -> None:
    now = utcnow()
    s.add(
        WebSession(
            token_hash=hashlib.sha256(PLANTED.encode()).hexdigest(),
            user_id=uid,
            csrf_token="x" * 43,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    s.commit()


def _next_user_id_is(s: Session, uid: int) -> None:
    """Make the database give ``uid`` to the next user (as an engine reusing ids would)."""
    if s.get_bind().dialect.name == "sqlite":
        s.add(User(id=uid - 1, email="before@example.com", name="B", role="marketer"))
    else:
        s.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), :v)"), {"v": uid - 1})
    s.commit()


def test_a_user_made_with_a_password_inherits_no_session_left_on_its_id(
    client: TestClient, settings: Settings
) -> None:
    _orphan_session(settings.crm_db_url(), 4242)
    with db(settings.crm_db_url()) as s:
        _next_user_id_is(s, 4242)
        made = crm_access.create_user(
            s, email="reused@example.com", name="R", role="admin", password="long enough"
        )
        s.commit()
        assert made.id == 4242
        assert s.scalar(select(func.count()).where(WebSession.user_id == 4242)) == 0
    assert not signed_in(browser_with(client, PLANTED), "/crm/users")


def _age(settings: Settings, **values: Any) -> None:
    with db(settings.crm_db_url()) as s:
        s.execute(update(WebSession).values(**values))
        s.commit()


def test_a_session_ends_after_its_idle_limit(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_admin)
    assert signed_in(client)
    idle = timedelta(minutes=settings.web_session_idle_minutes)
    _age(settings, last_seen_at=utcnow() - idle - timedelta(seconds=5))
    assert not signed_in(client)
    assert session_rows(settings, user_id(settings, users.crm_admin)) == 0


def test_a_busy_session_still_ends_at_its_absolute_limit(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_admin)
    _age(settings, expires_at=utcnow() - timedelta(seconds=1))
    assert not signed_in(client)


def test_use_keeps_a_session_alive(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_admin)
    seen = utcnow() - timedelta(minutes=settings.web_session_idle_minutes - 1)
    _age(settings, last_seen_at=seen)
    assert signed_in(client)
    with db(settings.crm_db_url()) as s:
        last = s.scalar(select(WebSession.last_seen_at))
    assert last is not None and last > seen + timedelta(minutes=1)


def test_the_cookie_is_an_opaque_token_and_only_its_digest_is_stored(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_admin)
    cookie = client.cookies.get(CRM_COOKIE)
    assert cookie
    padded = cookie.split(".")[0] + "=" * (-len(cookie.split(".")[0]) % 4)
    try:
        decoded = base64.urlsafe_b64decode(padded)
    except ValueError:
        decoded = b""
    assert b"uid" not in decoded and b"csrf" not in decoded
    assert "." not in cookie and len(cookie) >= 40
    with db(settings.crm_db_url()) as s:
        row = s.scalars(select(WebSession)).one()
    assert row.token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in (row.token_hash, row.csrf_token)
    # The page's CSRF token is the session's, kept on the server.
    assert csrf_of(client.get("/crm/mailshots").text) == row.csrf_token


def _set_cookies(resp: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h.lower() for h in resp.headers.get_list("set-cookie")}


@pytest.mark.parametrize(
    ("base_url", "secure"), [("https://testserver", True), ("http://testserver", False)]
)
def test_cookies_are_secure_over_https_httponly_and_lax(
    client: TestClient, users: PageUsers, base_url: str, secure: bool
) -> None:
    with TestClient(client.app, base_url=base_url) as c:
        page = c.get("/crm/login")
        login_cookie = _set_cookies(page)["mailshot_crm_login"]
        resp = c.post(
            "/crm/login",
            data={
                "email": users.crm_admin,
                "password": users.password,
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        assert resp.status_code == 303
        session_cookie = _set_cookies(resp)[CRM_COOKIE]
    for cookie in (login_cookie, session_cookie):
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/;" in cookie + ";"
        assert ("; secure" in cookie) is secure


def test_a_setting_makes_cookies_secure_on_plain_http(settings: Settings) -> None:
    """For a proxy that ends HTTPS without saying so."""
    app = create_app(settings.model_copy(update={"web_cookie_secure": True}))
    with TestClient(app) as c:
        cookie = _set_cookies(c.get("/crm/login"))["mailshot_crm_login"]
    assert "; secure" in cookie


def test_the_login_forms_token_is_bound_to_its_browser(
    client: TestClient, users: PageUsers
) -> None:
    """Before sign-in the token is an HMAC of the browser's own login cookie: a token taken
    from another browser (an attacker's), or made up, is refused."""
    attacker = TestClient(client.app)
    stolen = csrf_of(attacker.get("/crm/login").text)
    client.get("/crm/login")  # the victim's browser has a login cookie of its own
    for token in (stolen, "A" * 43):
        resp = client.post(
            "/crm/login",
            data={"email": users.crm_admin, "password": users.password, "csrf_token": token},
            follow_redirects=False,
        )
        assert resp.status_code == 403
    # Its own token works, once per sign-in; after it the session's token is needed.
    own = csrf_of(client.get("/crm/login").text)
    ok = client.post(
        "/crm/login",
        data={"email": users.crm_admin, "password": users.password, "csrf_token": own},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    refused = client.post("/crm/mailing-lists/new", data={"name": "X", "csrf_token": own})
    assert refused.status_code == 403


def test_signing_in_again_replaces_the_session(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    sign_in(client, "crm", users.crm_admin)
    first = client.cookies.get(CRM_COOKIE)
    sign_in(client, "crm", users.crm_admin)
    second = client.cookies.get(CRM_COOKIE)
    assert first and second and first != second
    assert session_rows(settings, user_id(settings, users.crm_admin)) == 1
    assert not signed_in(browser_with(client, first))
    assert signed_in(client)


def test_a_cookie_of_the_old_signed_kind_is_dropped_and_sign_in_works(
    client: TestClient, users: PageUsers
) -> None:
    old = base64.b64encode(b'{"uid": 1, "csrf": "x"}').decode() + ".aBcD.eFgH"
    client.cookies.set(CRM_COOKIE, old)
    resp = client.get("/crm/mailshots", follow_redirects=False)
    assert resp.status_code == 303
    assert _set_cookies(resp)[CRM_COOKIE].startswith(f'{CRM_COOKIE}=""')
    sign_in(client, "crm", users.crm_admin)
    assert signed_in(client)
