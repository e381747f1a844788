"""One part's keys (:class:`KeyStore`: its models, scopes and refusals), a key's state
and public form, and the checks a key's settings must pass. A key never holds more than
its access-as user's role allows (``KEY_SCOPES_BEYOND_ROLE``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailshot.core.access.schemas import ApiKeyPublic, KeyState
from mailshot.core.access.tokens import effective_scopes, role_allows
from mailshot.core.clock import utcnow
from mailshot.core.errors import AppError, FieldProblem, define, validation_error

KEY_SCOPES_BEYOND_ROLE = define(
    "KEY_SCOPES_BEYOND_ROLE",
    422,
    "A key acting as '{user}', who is a {role}, may not hold {scopes}: a {role}'s keys may "
    "hold {allowed}.",
    "Leave out {scopes} (a key that holds them already: change its scopes first), or choose "
    "an access-as user whose role allows them.",
)


AuditFn = Callable[[Session, str, str, int, dict[str, Any]], None]


@dataclass(frozen=True)
class KeyStore:
    """One part's keys: its models, its scopes and how it words a refused request."""

    key_model: Any
    user_model: Any
    refusal_model: Any
    product_prefix: str
    all_scopes: tuple[str, ...]
    role_scopes: Mapping[str, list[str]]
    unknown_scopes: Callable[[list[str]], AppError]
    dates_invalid: Callable[[datetime, datetime], AppError]
    audit: AuditFn | None = None

    def prefix_of(self, key: Any) -> str:
        return f"{self.product_prefix}_{key.public_id}_"

    def allowed_scopes(self, role: str) -> frozenset[str]:
        """The scopes a key of a user of ``role`` may hold and use."""
        return role_allows(role, self.role_scopes, self.all_scopes)


def key_state(key: Any, user_enabled: bool, now: datetime | None = None) -> KeyState:
    """Whether the key can be used now (the same order as the refusals at authentication)."""
    now = now or utcnow()
    if not key.enabled:
        return "disabled"
    if key.valid_from is not None and now < key.valid_from:
        return "not_yet_valid"
    if key.until is not None and now >= key.until:
        return "expired"
    if not user_enabled:
        return "user_disabled"
    return "active"


def public(
    store: KeyStore, key: Any, user: Any | None, now: datetime | None = None
) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        prefix=store.prefix_of(key),
        name=key.name,
        description=key.description,
        user_id=key.user_id,
        user_email=user.email if user is not None else None,
        scopes=list(key.scopes or []),
        effective_scopes=sorted(
            effective_scopes(key.scopes or (), store.allowed_scopes(user.role))
            if user is not None
            else ()
        ),
        permitted_ips=list(key.permitted_ips or []),
        valid_from=key.valid_from,
        until=key.until,
        enabled=key.enabled,
        state=key_state(key, bool(user.enabled) if user is not None else False, now),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        last_used_ip=key.last_used_ip,
        rotated_from_id=key.rotated_from_id,
    )


def check_scopes(store: KeyStore, scopes: list[str] | None) -> None:
    if scopes is None:
        return
    unknown = sorted(set(scopes) - set(store.all_scopes))
    if unknown:
        raise store.unknown_scopes(unknown)


def check_within_role(store: KeyStore, user: Any, scopes: list[str]) -> None:
    """Refuse scopes beyond what ``user``'s role allows (422, naming them)."""
    allowed = store.allowed_scopes(user.role)
    beyond = sorted(set(scopes) - allowed)
    if not beyond:
        return
    named = ", ".join(f"'{s}'" for s in beyond)
    may = ", ".join(f"'{s}'" for s in sorted(allowed)) or "no scope"
    raise AppError(
        KEY_SCOPES_BEYOND_ROLE,
        details=[
            FieldProblem(
                "scopes",
                "beyond_role",
                f"{user.email} is a {user.role}: the key may not hold {named} (only {may})",
                {"scopes": ", ".join(beyond)},
            )
        ],
        user=user.email,
        role=user.role,
        scopes=named,
        allowed=may,
    )


def check_networks(networks: list[str] | None) -> list[str]:
    """The networks, normalised (``10.0.0.1`` -> ``10.0.0.1/32``), or a 422 naming each bad one."""
    if not networks:
        return []
    problems: list[FieldProblem] = []
    out: list[str] = []
    for n, net in enumerate(networks):
        try:
            out.append(str(ipaddress.ip_network(net.strip(), strict=False)))
        except ValueError:
            problems.append(
                FieldProblem(
                    f"permitted_ips.{n}",
                    "ip_network",
                    f"{net!r} is not an IP address or network (e.g. 203.0.113.7 or 10.0.0.0/8)",
                )
            )
    if problems:
        raise validation_error(problems)
    return sorted(set(out))


def check_dates(store: KeyStore, valid_from: datetime | None, until: datetime | None) -> None:
    if valid_from is not None and until is not None and until <= valid_from:
        raise store.dates_invalid(valid_from, until)
