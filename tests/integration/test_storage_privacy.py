"""What the databases leave lying about: a failed statement's error (and so every log line
and traceback made of it) carries no personal data from its parameters, and the data
folder, the SQLite files (with their WAL files), the credentials and uploaded imports can
be read by the account running mailshot only."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from mailshot.app import provision
from mailshot.core.db.engine import make_engine, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.services import people_import

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


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most accounts have (022): files would be world-readable by default."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_a_new_installation_keeps_its_data_to_its_owner(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv" / "mailshot"
    settings = Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
    provision.ensure(settings)
    engine = make_engine(settings.crm_db_url())
    try:
        with engine.begin() as conn:  # an open connection that wrote: WAL and SHM exist
            conn.execute(text("UPDATE users SET name = name"))
            wal = [data_dir / "crm.db-wal", data_dir / "crm.db-shm"]
            assert all(p.exists() for p in wal)
            assert {p.name: _mode(p) for p in wal} == {p.name: 0o600 for p in wal}
    finally:
        engine.dispose()
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir.parent) == 0o700  # made for it too
    files = ["crm.db", "esp.db", "credentials.json", ".provision.lock"]
    assert {f: _mode(data_dir / f) for f in files} == {f: 0o600 for f in files}


@pytest.mark.usefixtures("usual_umask")
def test_an_uploaded_import_is_kept_to_the_owner(
    crm: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, int] = {}
    real_run = people_import.run

    def run(session: Any, run_id: int, path: Path, **kw: Any) -> Any:
        seen["file"], seen["folder"] = _mode(path), _mode(path.parent)
        return real_run(session, run_id, path, **kw)

    monkeypatch.setattr(people_import, "run", run)
    made = crm.post("imports/people", content=b"email,first_name\na@example.com,Ann\n")
    assert made.status_code == 202, made.text
    assert seen == {"file": 0o600, "folder": 0o700}
