"""First-run provisioning: users and keys made once, a second run changes nothing, the keys
work with the roles they were made for, and a lost credentials file heals itself."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailshot.app import provision
from mailshot.core import credentials
from mailshot.core.access.tokens import verify_password
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import ApiKey, User
from mailshot.esp.models import EspApiKey, EspUser

EVERYTHING = {
    "CRM admin user",
    "CRM integration user",
    "CRM integration key",
    "CRM CLI key",
    "ESP admin user",
    "ESP integration user",
    "ESP integration key",
    "ESP CLI key",
}


def _rows(url: str, user_model: Any, key_model: Any) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_unpooled_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            users = s.execute(
                select(user_model.id, user_model.email, user_model.role, user_model.password_hash)
            ).all()
            keys = s.execute(select(key_model.id, key_model.public_id, key_model.user_id)).all()
            return {
                "users": sorted(tuple(u) for u in users),
                "keys": sorted(tuple(k) for k in keys),
            }
    finally:
        engine.dispose()


def _state(settings: Settings) -> tuple[Any, Any]:
    return (
        _rows(settings.crm_db_url(), User, ApiKey),
        _rows(settings.esp_db_url(), EspUser, EspApiKey),
    )


def _bearer(token: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


def test_first_run_creates_everything_and_a_second_run_nothing(settings: Settings) -> None:
    first = provision.ensure(settings)
    assert set(first.created) == EVERYTHING
    assert first.first_run and first.admin_password
    assert first.password_for == ["CRM", "ESP"]
    file_bytes = settings.credentials_file.read_bytes()
    assert stat.S_IMODE(settings.credentials_file.stat().st_mode) == 0o600
    before = _state(settings)
    crm, esp = before
    assert [u[1:3] for u in crm["users"]] == [
        ("admin@example.com", "admin"),
        ("integration@mailshot.local", "integration"),
    ]
    assert len(crm["keys"]) == 2 and len(esp["keys"]) == 2

    second = provision.ensure(settings)
    assert second.already_provisioned
    assert second.admin_password is None and second.created == []
    assert _state(settings) == before
    assert settings.credentials_file.read_bytes() == file_bytes


def test_the_password_is_kept_only_as_an_argon2_hash(settings: Settings) -> None:
    result = provision.ensure(settings)
    assert result.admin_password is not None
    crm, esp = _state(settings)
    for users in (crm["users"], esp["users"]):
        admin_hash = next(u[3] for u in users if u[1] == "admin@example.com")
        assert admin_hash.startswith("$argon2")
        assert verify_password(result.admin_password, admin_hash)
    assert result.admin_password not in settings.credentials_file.read_text()


def test_the_saved_keys_work_with_the_roles_they_were_made_for(
    settings: Settings, client: TestClient
) -> None:
    provision.ensure(settings)
    creds = credentials.load(settings.credentials_file)
    assert creds.admin_email == "admin@example.com"
    cli = _bearer(creds.cli_key)
    bridge = _bearer(creds.crm_integration_key)
    made = client.post("/crm/api/v1/organisations", json={"name": "Acme"}, headers=cli)
    assert made.status_code == 201, made.text
    assert client.get("/crm/api/v1/organisations", headers=bridge).status_code == 200
    refused = client.post("/crm/api/v1/organisations", json={"name": "X"}, headers=bridge)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    limits = client.get("/esp/api/v1/limits", headers=_bearer(creds.esp_integration_key))
    assert limits.status_code == 200, limits.text


def test_a_lost_credentials_file_gets_new_keys_but_no_new_users(
    settings: Settings, client: TestClient
) -> None:
    provision.ensure(settings)
    users_before = [s["users"] for s in _state(settings)]
    settings.credentials_file.unlink()

    healed = provision.ensure(settings)
    assert set(healed.created) == {
        "CRM integration key",
        "CRM CLI key",
        "ESP integration key",
        "ESP CLI key",
    }
    assert healed.admin_password is None
    assert [s["users"] for s in _state(settings)] == users_before
    creds = credentials.load(settings.credentials_file)
    assert (
        client.get("/crm/api/v1/organisations", headers=_bearer(creds.cli_key)).status_code == 200
    )


def test_a_key_the_database_no_longer_knows_is_replaced(settings: Settings) -> None:
    provision.ensure(settings)
    creds = credentials.load(settings.credentials_file)
    assert creds.cli_key is not None
    stale = creds.cli_key.get_secret_value()
    creds.cli_key = type(creds.cli_key)(stale[:-4] + "XXXX")  # wrong secret
    credentials.save(settings.credentials_file, creds)

    healed = provision.ensure(settings)
    assert healed.created == ["CRM CLI key"]
    fresh = credentials.load(settings.credentials_file)
    assert fresh.cli_key is not None and fresh.cli_key.get_secret_value() != stale
    assert fresh.crm_integration_key == creds.crm_integration_key


def test_a_fresh_folder_gets_its_databases(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "new" / "data", _env_file=None)  # type: ignore[call-arg]
    result = provision.ensure(settings)
    assert result.first_run
    assert (tmp_path / "new" / "data" / "crm.db").is_file()
    assert (tmp_path / "new" / "data" / "esp.db").is_file()
    assert provision.ensure(settings).already_provisioned


def test_a_disabled_integration_key_stays_disabled_on_the_next_run(settings: Settings) -> None:
    provision.ensure(settings)
    engine = make_unpooled_engine(settings.crm_db_url())
    try:
        with make_sessionmaker(engine)() as s:
            key = s.scalar(select(ApiKey).join(User).where(User.role == "integration"))
            assert key is not None
            key.enabled = False
            s.commit()
            key_id = key.id
        again = provision.ensure(settings)
        assert "CRM integration key" not in again.created
        with make_sessionmaker(engine)() as s:
            keys = s.scalars(select(ApiKey).join(User).where(User.role == "integration")).all()
            assert [(k.id, k.enabled) for k in keys] == [(key_id, False)]
    finally:
        engine.dispose()
