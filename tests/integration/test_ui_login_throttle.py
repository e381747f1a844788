"""Sign-in throttling per account and per client address (state in the database, so every
process agrees), the log line of every failure, and the bound on password checks running
at once. Real app (TestClient), both database backends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from mailshot.app.server import create_app
from mailshot.core.access.tokens import verify_password
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.core.webui import login as login_module
from mailshot.core.webui import throttle
from mailshot.crm.models import LoginFailure, User
from tests.support.ui_support import PageUsers, csrf_of, make_page_users

WRONG = "not the password at all"


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


def app_with(settings: Settings, **changes: Any) -> Any:
    return create_app(settings.model_copy(update=changes))


@pytest.fixture
def tight(settings: Settings) -> Iterator[TestClient]:
    """The app with 3 failures per account and 5 per address before attempts must wait."""
    app = app_with(settings, login_account_failures=3, login_address_failures=5)
    with TestClient(app) as c:
        yield c


def attempt(c: TestClient, email: str, password: str) -> Any:
    page = c.get("/crm/login")
    return c.post(
        "/crm/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


def failures(settings: Settings) -> int:
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        n = int(s.scalar(select(func.count()).select_from(LoginFailure)) or 0)
    engine.dispose()
    return n


def age_failures(settings: Settings, by: timedelta) -> None:
    """Move every recorded failure ``by`` into the past (instead of waiting)."""
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        for row in s.scalars(select(LoginFailure)):
            row.at = row.at - by
        s.commit()
    engine.dispose()


def set_failure_times(settings: Settings, at: Any) -> None:
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        s.execute(update(LoginFailure).values(at=at))
        s.commit()
    engine.dispose()


def test_the_attempt_after_n_failures_is_refused_with_when_to_try_again(
    tight: TestClient, users: PageUsers, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailshot.core.webui")
    for _ in range(3):
        assert attempt(tight, users.crm_admin, WRONG).status_code == 400
    # The right password does not get through either: the account must wait.
    refused = attempt(tight, users.crm_admin, users.password)
    assert refused.status_code == 429
    assert "Too many failed sign-ins to this account" in refused.context["error"]  # type: ignore[attr-defined]
    assert "Try again at" in refused.context["error"]  # type: ignore[attr-defined]
    assert 25 <= int(refused.headers["retry-after"]) <= 30
    assert tight.get("/crm/mailshots", follow_redirects=False).status_code == 303
    assert failures(settings) == 3  # a refused attempt is not a failure (nor a hash)
    # Every failure was logged with the address typed and the client's address, never
    # the password.
    failed = [r for r in caplog.records if "sign-in failed" in r.getMessage()]
    assert len(failed) == 3
    for record in failed:
        assert users.crm_admin in record.getMessage()
        assert "testclient" in record.getMessage()
        assert record.__dict__["client_ip"] == "testclient"
    assert any("sign-in refused" in r.getMessage() for r in caplog.records)
    assert all(WRONG not in r.getMessage() for r in caplog.records)
    assert all(users.password not in r.getMessage() for r in caplog.records)
    # Once the wait is over the right password signs in, and the failures are forgotten.
    age_failures(settings, timedelta(seconds=31))
    assert attempt(tight, users.crm_admin, users.password).status_code == 303
    assert failures(settings) == 0


def test_every_further_failure_doubles_the_wait(
    tight: TestClient, users: PageUsers, settings: Settings
) -> None:
    waits = []
    for _ in range(3):
        attempt(tight, users.crm_admin, WRONG)
    for _ in range(3):
        refused = attempt(tight, users.crm_admin, WRONG)
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        waits.append(wait)
        age_failures(settings, timedelta(seconds=wait + 1))
        assert attempt(tight, users.crm_admin, WRONG).status_code == 400
    assert [round(w / 30) for w in waits] == [1, 2, 4]


def test_the_wait_never_exceeds_the_window_and_old_failures_stop_counting(
    tight: TestClient, users: PageUsers, settings: Settings
) -> None:
    for _ in range(3):
        attempt(tight, users.crm_admin, WRONG)
    # Forty recent failures: the wait is at most the window (15 minutes).
    engine = make_unpooled_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        now = utcnow()
        for _ in range(40):
            s.add(LoginFailure(at=now, email=users.crm_admin, client_ip="192.0.2.9"))
        s.commit()
    engine.dispose()
    refused = attempt(tight, users.crm_admin, users.password)
    assert refused.status_code == 429
    assert 890 <= int(refused.headers["retry-after"]) <= 900
    # Failures older than the window count no more.
    set_failure_times(settings, utcnow() - timedelta(minutes=16))
    assert attempt(tight, users.crm_admin, users.password).status_code == 303


def test_unknown_addresses_are_throttled_like_known_ones(
    settings: Settings, users: PageUsers
) -> None:
    answers = []
    app = app_with(settings, login_account_failures=3, login_address_failures=100)
    with TestClient(app) as c:
        for email in (users.crm_admin, "nobody@example.com"):
            for _ in range(3):
                attempt(c, email, WRONG)
            refused = attempt(c, email, WRONG)
            error = refused.context["error"]  # type: ignore[attr-defined]
            answers.append((refused.status_code, error.split(" Try")[0]))
    assert answers[0] == answers[1] == (429, "Too many failed sign-ins to this account.")


def test_one_client_address_is_throttled_across_accounts(
    tight: TestClient, users: PageUsers
) -> None:
    for n in range(5):
        assert attempt(tight, f"guess{n}@example.com", WRONG).status_code == 400
    refused = attempt(tight, users.crm_marketer, users.password)
    assert refused.status_code == 429
    assert "from your network address" in refused.context["error"]  # type: ignore[attr-defined]


def test_processes_share_the_count(settings: Settings, users: PageUsers, tight: TestClient) -> None:
    """Two apps on the same database (two server processes) see each other's failures."""
    with TestClient(app_with(settings, login_account_failures=3)) as other:
        for c in (tight, other, tight):
            assert attempt(c, users.crm_admin, WRONG).status_code == 400
        assert attempt(other, users.crm_admin, users.password).status_code == 429


def test_a_sign_in_waiting_too_long_for_a_password_check_is_refused_503(
    settings: Settings, users: PageUsers
) -> None:
    app = app_with(settings, login_hash_concurrency=1, login_hash_wait_seconds=0.2)
    gate = throttle.hash_gate(1)
    with TestClient(app) as c:
        assert gate.acquire(timeout=10)  # every turn taken (by a check that takes long)
        try:
            busy = attempt(c, users.crm_admin, users.password)
        finally:
            gate.release()
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "5"
        assert "busy checking other sign-ins" in busy.context["error"]  # type: ignore[attr-defined]
        assert failures(settings) == 0
        assert attempt(c, users.crm_admin, users.password).status_code == 303


def test_password_checks_run_at_most_the_configured_number_at_once(
    settings: Settings, users: PageUsers, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def counted(password: str, stored: str) -> bool:  # the real check, counted
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return verify_password(password, stored)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(login_module, "verify_password", counted)
    app = app_with(
        settings,
        login_hash_concurrency=2,
        login_hash_wait_seconds=60,
        login_account_failures=100,
        login_address_failures=100,
    )
    statuses: list[int] = []
    with TestClient(app) as c:
        tokens = [TestClient(app) for _ in range(8)]
        forms = [csrf_of(t.get("/crm/login").text) for t in tokens]
        start = threading.Barrier(len(tokens))

        def one(i: int) -> None:
            start.wait()
            resp = tokens[i].post(
                "/crm/login",
                data={"email": users.crm_admin, "password": WRONG, "csrf_token": forms[i]},
                follow_redirects=False,
            )
            statuses.append(resp.status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(tokens))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert c.get("/healthz").status_code == 200
    assert statuses == [400] * 8
    assert most == 2


def test_a_hash_with_old_parameters_still_verifies_and_is_replaced(
    client: TestClient, users: PageUsers, settings: Settings
) -> None:
    from argon2 import PasswordHasher

    old = PasswordHasher(memory_cost=65536, time_cost=3, parallelism=4).hash(users.password)
    engine = make_unpooled_engine(settings.crm_db_url())
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        s.execute(update(User).where(User.email == users.crm_admin).values(password_hash=old))
        s.commit()
    assert attempt(client, users.crm_admin, users.password).status_code == 303
    with sessions() as s:
        stored = s.scalar(select(User.password_hash).where(User.email == users.crm_admin))
    engine.dispose()
    assert stored is not None and stored != old
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(users.password, stored)
