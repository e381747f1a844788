"""The CRM's API keys, whole lifecycle: create (token shown once), list, read, change,
disable, enable, rotate with an overlap, and the refused requests. Every change is written
to the audit log. The rules are shared with the ESP (:mod:`mailshot.core.access.service`); this
module binds them to the CRM's tables, scopes and wording (:data:`STORE`, :data:`KEYS`).

Unknown scopes, bad networks and an Until before Valid From are refused as
``VALIDATION_FAILED`` naming the field, like every other CRM field refusal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailshot.core.access import service as keyadmin
from mailshot.core.errors import AppError
from mailshot.crm.errors import field_error
from mailshot.crm.models import ApiKey, KeyRefusalRecord, User
from mailshot.crm.scopes import ALL_SCOPES, ROLE_SCOPES
from mailshot.crm.services.common import audit


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


#: The first part of every CRM key: ``mscrm_<id>_<secret>``.
PRODUCT_PREFIX = "mscrm"

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


KEYS = keyadmin.KeyService(STORE)
