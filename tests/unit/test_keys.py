"""API-key primitives: token format, hashing, the rule that decides whether a key works,
and what its user's role lets it do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailshot.core.access.tokens import (
    KeyRefusal,
    check_key_state,
    effective_scopes,
    hash_password,
    new_key,
    parse_token,
    role_allows,
    secret_matches,
    verify_password,
)
from mailshot.crm.scopes import ALL_SCOPES as CRM_SCOPES
from mailshot.crm.scopes import ROLE_SCOPES as CRM_ROLES
from mailshot.esp.scopes import ALL_SCOPES as ESP_SCOPES
from mailshot.esp.scopes import ROLE_SCOPES as ESP_ROLES

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _state(**overrides: object) -> KeyRefusal | None:
    args: dict[str, object] = {
        "enabled": True,
        "valid_from": None,
        "until": None,
        "user_enabled": True,
        "permitted_ips": [],
        "client_ip": "127.0.0.1",
        "now": NOW,
    }
    args.update(overrides)
    return check_key_state(**args)  # type: ignore[arg-type]


def test_token_round_trip_and_only_hash_stored() -> None:
    made = new_key("mscrm")
    parsed = parse_token(made.token)
    assert parsed is not None
    assert parsed.product == "mscrm"
    assert parsed.public_id == made.public_id
    assert parsed.secret not in made.secret_hash
    assert secret_matches(parsed.secret, made.secret_hash)
    assert not secret_matches(parsed.secret + "x", made.secret_hash)


@pytest.mark.parametrize("token", ["", "abc", "mscrm_only", "mscrm__secret"])
def test_malformed_tokens_do_not_parse(token: str) -> None:
    assert parse_token(token) is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        ({"enabled": False}, KeyRefusal.DISABLED),
        ({"valid_from": NOW + timedelta(seconds=1)}, KeyRefusal.NOT_YET_VALID),
        ({"valid_from": NOW - timedelta(days=1)}, None),
        ({"until": NOW}, KeyRefusal.EXPIRED),
        ({"until": NOW + timedelta(days=1)}, None),
        ({"user_enabled": False}, KeyRefusal.USER_DISABLED),
        ({"permitted_ips": ["10.0.0.0/8"]}, KeyRefusal.IP_NOT_PERMITTED),
        ({"permitted_ips": ["127.0.0.0/8"]}, None),
        ({"permitted_ips": ["127.0.0.1"], "client_ip": None}, KeyRefusal.IP_NOT_PERMITTED),
    ],
)
def test_key_state_rules(overrides: dict[str, object], expected: KeyRefusal | None) -> None:
    assert _state(**overrides) == expected


def test_passwords_are_argon2_hashed() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("x", "not-a-hash")


@pytest.mark.parametrize(
    ("roles", "all_scopes"), [(CRM_ROLES, CRM_SCOPES), (ESP_ROLES, ESP_SCOPES)]
)
def test_a_key_uses_only_what_its_users_role_allows(
    roles: dict[str, list[str]], all_scopes: tuple[str, ...]
) -> None:
    assert role_allows("admin", roles, all_scopes) == frozenset(all_scopes)
    marketer = role_allows("marketer", roles, all_scopes)
    assert "admin" not in marketer and "metrics" not in marketer
    assert marketer == frozenset(roles["marketer"])
    assert role_allows("nobody", roles, all_scopes) == frozenset()
    held = ["admin", *roles["marketer"], "metrics"]
    assert effective_scopes(held, marketer) == frozenset(roles["marketer"])
    admin = role_allows("admin", roles, all_scopes)
    assert effective_scopes(held, admin) == frozenset(held)
    assert "metrics" in all_scopes
