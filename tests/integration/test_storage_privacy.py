"""What the databases leave lying about: a failed statement's error (and so every log line
and traceback made of it) carries no personal data from its parameters."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from mailshot.db import make_engine, make_unpooled_engine
from mailshot.settings import Settings

SECRET_ADDRESS = "private.person@example.com"


@pytest.mark.parametrize("make", [make_engine, make_unpooled_engine], ids=["pooled", "unpooled"])
def test_database_errors_do_not_carry_the_statements_parameters(
    settings: Settings, make: object, caplog: pytest.LogCaptureFixture
) -> None:
    engine: Engine = make(settings.crm_db_url())  # type: ignore[operator]
    insert = text(
        "INSERT INTO users (email, name, role, enabled, created_at, updated_at) "
        "VALUES (:email, :name, 'marketer', true, :at, :at)"
    )
    values = {"email": SECRET_ADDRESS, "name": "Private Person", "at": "2030-01-01 00:00:00"}
    caplog.set_level(logging.DEBUG)
    try:
        with engine.begin() as conn:
            conn.execute(insert, values)
        with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
            conn.execute(insert, values)  # the same address again: unique violation
    finally:
        engine.dispose()
    shown = str(caught.value)
    assert "users" in shown  # the statement is still named, to say what failed
    assert SECRET_ADDRESS not in shown and "Private Person" not in shown
    assert SECRET_ADDRESS not in caplog.text
