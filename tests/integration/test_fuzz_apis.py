"""Schemathesis over both OpenAPI documents, in-process, with an admin key and the demo data
(issue 15, "checked by"): no request it makes may get a 5xx. A bounded number of examples per
operation keeps it to about a minute; ``schemathesis run`` against ``mailshot serve --demo``
goes further (see the issue). On SQLite only: the fuzzer's requests are the same on both
engines, and the bounds it relies on are tested on both by ``test_api_bounds``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import update

from mailshot.app import demo
from mailshot.app.server import create_app
from mailshot.core.access.tokens import parse_token
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm import models as crm_models
from mailshot.crm import scopes as crm_scopes
from mailshot.esp import models as esp_models
from mailshot.esp import scopes as esp_scopes
from tests.conftest import Keys

EXAMPLES = 5


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def fuzzed(settings: Settings, keys: Keys) -> Iterator[FastAPI]:
    demo.load(settings, people=30)
    app = create_app(settings)
    with TestClient(app):  # its lifespan runs while the fuzzer calls it
        yield app


class _Restore:
    """Before each request: the fuzzer's admin keys and users get their rights back (it
    disables, rotates and restricts keys and users through the very API it tests)."""

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.engines: list[Any] = []
        self.parts = []
        for url, key_model, user_model, token, scopes in (
            (settings.crm_db_url(), crm_models.ApiKey, crm_models.User, keys.crm_admin, crm_scopes),
            (
                settings.esp_db_url(),
                esp_models.EspApiKey,
                esp_models.EspUser,
                keys.esp_admin,
                esp_scopes,
            ),
        ):
            parsed = parse_token(token)
            assert parsed is not None
            engine = make_unpooled_engine(url)
            self.engines.append(engine)
            self.parts.append(
                (make_sessionmaker(engine), key_model, user_model, parsed.public_id, scopes)
            )

    def __call__(self) -> None:
        for sessions, key_model, user_model, public_id, scopes in self.parts:
            with sessions() as s:
                key = s.query(key_model).filter_by(public_id=public_id).one()
                key.enabled, key.valid_from, key.until, key.permitted_ips = True, None, None, []
                key.scopes = sorted(scopes.ROLE_SCOPES["admin"])
                s.execute(
                    update(user_model)
                    .where(user_model.id == key.user_id)
                    .values(enabled=True, role="admin")
                )
                s.commit()

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


LOCK_OUTS = re.compile(r"/(api-keys|users)\b")


def _no_long_poll(case: Any) -> Any:
    """A lease asks not to wait for work: a long poll would only make the run slower."""
    if isinstance(case.body, dict) and isinstance(case.body.get("wait_seconds"), int | float):
        case.body["wait_seconds"] = 0
    return case


def fuzz(app: FastAPI, part: str, token: str, restore: _Restore) -> tuple[int, list[str]]:
    """Run every operation of ``part``'s API with positive and negative examples; return
    how many requests were made and those answered with a 5xx."""
    schema = schemathesis.openapi.from_asgi(f"/{part}/api/v1/openapi.json", app)
    auth = {"Authorization": f"Bearer {token}"}
    calls: list[str] = []
    failures: list[str] = []

    def examples(operation: Any, mode: GenerationMode) -> None:
        # A write to keys or users may take the fuzzer's own rights away: give them back.
        locks_out = operation.method.upper() != "GET" and LOCK_OUTS.search(operation.path)

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode).map(_no_long_poll))
        def run(case: Any) -> None:
            calls.append(operation.label)
            try:
                case.call_and_validate(headers=auth, checks=[not_a_server_error], timeout=30)
            except AssertionError as exc:  # schemathesis' failure, with the request
                failures.append(f"{operation.label}: {str(exc)[:600]}")
            finally:
                if locks_out:
                    restore()

        run()

    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            examples(result.ok(), mode)
    return len(calls), failures


@pytest.mark.parametrize("part", ["crm", "esp"])
def test_the_fuzzer_finds_no_5xx(
    fuzzed: FastAPI, settings: Settings, keys: Keys, part: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token = keys.crm_admin if part == "crm" else keys.esp_admin
    restore = _Restore(settings, keys)
    try:
        calls, failures = fuzz(fuzzed, part, token, restore)
    finally:
        restore.close()
    with capsys.disabled():
        print(f"\n{part}: {calls} requests, {len(failures)} answered 5xx")
    assert calls > 100
    assert not failures, "\n\n".join(failures)
