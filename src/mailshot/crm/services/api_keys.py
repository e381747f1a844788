"""The CRM's API keys, whole lifecycle: create (token shown once), list, read, change,
disable, enable, rotate with an overlap, and the refused requests. Every change is written
to the audit log. The rules are shared with the ESP (:mod:`mailshot.keyadmin`); this
module binds them to the CRM's tables, scopes and wording.

Unknown scopes, bad networks and an Until before Valid From are refused as
``VALIDATION_FAILED`` naming the field, like every other CRM field refusal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailshot import keyadmin
from mailshot.crm.api.deps import PRODUCT_PREFIX
from mailshot.crm.errors import field_error
from mailshot.crm.models import ApiKey, KeyRefusalRecord, User
from mailshot.crm.scopes import ALL_SCOPES, ROLE_SCOPES
from mailshot.crm.services.common import audit
from mailshot.errors import AppError
from mailshot.keyadmin import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
    KeyRefusalPublic,
)


def _unknown_scopes(unknown: list[str]) -> AppError:
    return field_error(
        "scopes",
        "unknown_scope",
        f"{', '.join(unknown)} {'is not a scope' if len(unknown) == 1 else 'are not scopes'} "
        f"of the CRM; the scopes are {', '.join(ALL_SCOPES)}",
        unknown=", ".join(unknown),
    )


def _dates_invalid(valid_from: datetime, until: datetime) -> AppError:
    return field_error(
        "until",
        "after_valid_from",
        f"Until ({until.isoformat()}) must be after Valid From ({valid_from.isoformat()})",
    )


def _audit(session: Session, actor: str, action: str, key_id: int, detail: dict[str, Any]) -> None:
    audit(session, actor, action, "api_key", key_id, detail)


STORE = keyadmin.KeyStore(
    key_model=ApiKey,
    user_model=User,
    refusal_model=KeyRefusalRecord,
    product_prefix=PRODUCT_PREFIX,
    all_scopes=ALL_SCOPES,
    role_scopes=ROLE_SCOPES,
    unknown_scopes=_unknown_scopes,
    dates_invalid=_dates_invalid,
    audit=_audit,
)


def public(key: ApiKey, user: User | None) -> ApiKeyPublic:
    return keyadmin.public(STORE, key, user)


def create(session: Session, data: ApiKeyCreate, *, actor: str | None = None) -> ApiKeyCreated:
    key, user, token = keyadmin.create(STORE, session, data, actor=actor)
    return ApiKeyCreated(**public(key, user).model_dump(), token=token)


def get(session: Session, key_id: int) -> ApiKeyPublic:
    return public(*keyadmin.get_key(STORE, session, key_id))


def update(
    session: Session, key_id: int, patch: ApiKeyUpdate, *, actor: str | None = None
) -> ApiKeyPublic:
    return public(*keyadmin.update(STORE, session, key_id, patch, actor=actor))


def set_enabled(
    session: Session, key_id: int, *, enabled: bool, actor: str | None = None
) -> ApiKeyPublic:
    return public(*keyadmin.set_enabled(STORE, session, key_id, enabled=enabled, actor=actor))


def rotate(
    session: Session, key_id: int, body: ApiKeyRotate, *, actor: str | None = None
) -> ApiKeyRotated:
    new, user, token, old = keyadmin.rotate(STORE, session, key_id, body, actor=actor)
    return ApiKeyRotated(**public(new, user).model_dump(), token=token, old_key=public(old, user))


def page(
    session: Session, *, cursor: str | None, limit: int, user_id: int | None = None
) -> tuple[list[ApiKeyPublic], str | None]:
    rows, next_cursor = keyadmin.page(STORE, session, cursor=cursor, limit=limit, user_id=user_id)
    return [public(k, u) for k, u in rows], next_cursor


def refusals(
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    key_id: int | None = None,
    reason: str | None = None,
) -> tuple[list[KeyRefusalPublic], str | None]:
    return keyadmin.refusals_page(
        STORE, session, cursor=cursor, limit=limit, key_id=key_id, reason=reason
    )
