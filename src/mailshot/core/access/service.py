"""The API-key lifecycle, shared by the CRM and the ESP (each over its own tables): create,
list, read, change, disable, enable, rotate, and the record of refused requests.

Both parts keep keys with the same columns (``models/access.py`` in each), so one set of
schemas and functions serves both through a :class:`KeyStore` naming the part's models,
scopes and refusals; a :class:`KeyService` answers in those schemas (for the routes,
:mod:`mailshot.core.access.routes`, and the pages). The secret exists only in the answer to a
create or a rotate (:class:`ApiKeyCreated`); everything else shows the key's prefix
(``mscrm_<id>_``), never the secret or its digest.

A key never holds more than its access-as user's role allows (``admin`` only for an admin,
who may hold every scope): create, change and rotate refuse it with
``KEY_SCOPES_BEYOND_ROLE``; a key whose user was demoted since keeps its scopes on record,
but authentication uses only those the role allows (``effective_scopes``).

Rotation issues a new key with the same settings and a new secret; the old key stays valid
(for ``overlap_hours`` at most, when given) until it is disabled or expires, so an
integration can move to the new secret without a gap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.access.auth import issue_key
from mailshot.core.access.refusals import KeyRefusalPublic, refusals_page
from mailshot.core.access.tokens import effective_scopes, role_allows
from mailshot.core.clock import utcnow
from mailshot.core.errors import NOT_FOUND, AppError, FieldProblem, define, validation_error
from mailshot.core.web.paging import decode_cursor, encode_cursor
from mailshot.core.web.types import Id

KeyState = Literal["active", "disabled", "not_yet_valid", "expired", "user_disabled"]

SHOWN_ONCE = "Copy this key now: it is shown once and cannot be shown again."

KEY_SCOPES_BEYOND_ROLE = define(
    "KEY_SCOPES_BEYOND_ROLE",
    422,
    "A key acting as '{user}', who is a {role}, may not hold {scopes}: a {role}'s keys may "
    "hold {allowed}.",
    "Leave out {scopes} (a key that holds them already: change its scopes first), or choose "
    "an access-as user whose role allows them.",
)


# ---- schemas ----------------------------------------------------------------------------
def _not_null(_cls: Any, value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(
            "not_null", "may not be null; leave the field out to keep its value"
        )
    return value


class ApiKeyCreate(BaseModel):
    """A new key acting as ``user_id``; without ``scopes`` it gets its user's role's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    user_id: Id = Field(description="The access-as user: the key acts with their rights.")
    description: str | None = Field(default=None, max_length=2000)
    scopes: list[str] | None = Field(default=None, description="Capabilities of the key.")
    permitted_ips: list[str] = Field(
        default_factory=list, max_length=100, description="Addresses or networks (CIDR)."
    )
    valid_from: AwareDatetime | None = None
    until: AwareDatetime | None = None
    enabled: bool = True


class ApiKeyUpdate(BaseModel):
    """Change a key; fields left out keep their values (``valid_from``/``until`` may be
    set to null to remove them)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    scopes: list[str] | None = None
    permitted_ips: list[str] | None = Field(default=None, max_length=100)
    valid_from: AwareDatetime | None = None
    until: AwareDatetime | None = None

    _refuse_null = field_validator("name", "scopes", "permitted_ips")(classmethod(_not_null))


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float | None = Field(
        default=None,
        ge=0,
        le=24 * 366,
        description="The old key expires this many hours from now (left out: it stays "
        "valid until it is disabled or reaches its own Until).",
    )
    until: AwareDatetime | None = Field(default=None, description="Until of the new key.")


class ApiKeyPublic(BaseModel):
    """A key as the API shows it: its prefix, never its secret or the secret's digest."""

    id: int
    prefix: str
    name: str
    description: str | None
    user_id: int
    user_email: str | None = None
    scopes: list[str]
    effective_scopes: list[str] = Field(
        default_factory=list,
        description="The scopes the key may use now: those its user's current role allows.",
    )
    permitted_ips: list[str]
    valid_from: datetime | None
    until: datetime | None
    enabled: bool
    state: KeyState = "active"
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None
    rotated_from_id: int | None = None


class ApiKeyCreated(ApiKeyPublic):
    """The new key with its token: shown this once, never again."""

    token: str
    warning: str = SHOWN_ONCE


class ApiKeyRotated(ApiKeyCreated):
    """The new key (with its token, shown once) and the old key as it now stands."""

    old_key: ApiKeyPublic


# ---- the store --------------------------------------------------------------------------
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


def _check_scopes(store: KeyStore, scopes: list[str] | None) -> None:
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


def _check_networks(networks: list[str] | None) -> list[str]:
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


def _check_dates(store: KeyStore, valid_from: datetime | None, until: datetime | None) -> None:
    if valid_from is not None and until is not None and until <= valid_from:
        raise store.dates_invalid(valid_from, until)


def _audit(store: KeyStore, session: Session, actor: str | None, action: str, key: Any) -> None:
    if store.audit is not None and actor is not None:
        store.audit(
            session, actor, action, key.id, {"name": key.name, "prefix": store.prefix_of(key)}
        )


def get_user(store: KeyStore, session: Session, user_id: int) -> Any:
    user = session.get(store.user_model, user_id)
    if user is None:
        raise AppError(NOT_FOUND, what="user", id=user_id)
    return user


def get_key(store: KeyStore, session: Session, key_id: int) -> tuple[Any, Any]:
    """The key and its access-as user, or 404."""
    key = session.get(store.key_model, key_id)
    if key is None:
        raise AppError(NOT_FOUND, what="API key", id=key_id)
    return key, session.get(store.user_model, key.user_id)


def create(
    store: KeyStore, session: Session, data: ApiKeyCreate, *, actor: str | None = None
) -> tuple[Any, Any, str]:
    """Issue a key; return it, its user and its token (shown once). Commits."""
    _check_scopes(store, data.scopes)
    networks = _check_networks(data.permitted_ips)
    _check_dates(store, data.valid_from, data.until)
    user = get_user(store, session, data.user_id)
    scopes = data.scopes if data.scopes is not None else store.role_scopes.get(user.role, [])
    check_within_role(store, user, list(scopes))
    key, token = issue_key(
        session,
        store.key_model,
        product_prefix=store.product_prefix,
        name=data.name,
        user_id=user.id,
        scopes=list(scopes),
        description=data.description,
        permitted_ips=networks,
        valid_from=data.valid_from,
        until=data.until,
    )
    key.enabled = data.enabled
    _audit(store, session, actor, "api_key.create", key)
    session.commit()
    return key, user, token


def update(
    store: KeyStore, session: Session, key_id: int, patch: ApiKeyUpdate, *, actor: str | None = None
) -> tuple[Any, Any]:
    """Change the fields sent; commit; return the key and its user."""
    key, user = get_key(store, session, key_id)
    values = patch.model_dump(exclude_unset=True)
    if "scopes" in values:
        _check_scopes(store, values["scopes"])
        values["scopes"] = sorted(set(values["scopes"]))
        check_within_role(store, user, values["scopes"])
    if "permitted_ips" in values:
        values["permitted_ips"] = _check_networks(values["permitted_ips"])
    _check_dates(store, values.get("valid_from", key.valid_from), values.get("until", key.until))
    changed = False
    for name, value in values.items():
        if getattr(key, name) != value:
            setattr(key, name, value)
            changed = True
    if changed:
        _audit(store, session, actor, "api_key.update", key)
    session.commit()
    return key, user


def set_enabled(
    store: KeyStore, session: Session, key_id: int, *, enabled: bool, actor: str | None = None
) -> tuple[Any, Any]:
    key, user = get_key(store, session, key_id)
    if key.enabled != enabled:
        key.enabled = enabled
        _audit(store, session, actor, "api_key.enable" if enabled else "api_key.disable", key)
    session.commit()
    return key, user


def rotate(
    store: KeyStore,
    session: Session,
    key_id: int,
    body: ApiKeyRotate,
    *,
    actor: str | None = None,
    now: datetime | None = None,
) -> tuple[Any, Any, str, Any]:
    """A new key with the old one's settings and a new secret; the old key stays valid (at
    most ``overlap_hours`` more, when given). Commits; returns new key, user, token, old key."""
    old, user = get_key(store, session, key_id)
    check_within_role(store, user, list(old.scopes or []))
    at = now or utcnow()
    _check_dates(store, None if body.until is None else at, body.until)
    new, token = issue_key(
        session,
        store.key_model,
        product_prefix=store.product_prefix,
        name=old.name,
        user_id=old.user_id,
        scopes=list(old.scopes or []),
        description=old.description,
        permitted_ips=list(old.permitted_ips or []),
        valid_from=None,
        until=body.until,
        rotated_from_id=old.id,
    )
    if body.overlap_hours is not None:
        ends = at + timedelta(hours=body.overlap_hours)
        if old.until is None or old.until > ends:
            old.until = ends
    _audit(store, session, actor, "api_key.rotate", old)
    session.commit()
    return new, user, token, old


def page(
    store: KeyStore,
    session: Session,
    *,
    cursor: str | None,
    limit: int,
    user_id: int | None = None,
) -> tuple[list[tuple[Any, Any]], str | None]:
    """Keys with their users, by id, one keyset page at a time."""
    k, u = store.key_model, store.user_model
    query = select(k, u).join(u, u.id == k.user_id)
    if user_id is not None:
        query = query.where(k.user_id == user_id)
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(k.id > after)
    rows = [(r[0], r[1]) for r in session.execute(query.order_by(k.id).limit(limit + 1))]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1][0].id)
    return rows, None


# ---- the lifecycle as the API and the pages show it -------------------------------------
@dataclass(frozen=True)
class KeyService:
    """One part's key lifecycle answering in the public schemas: a row never leaves it, a
    token only in the answer to a create or a rotate. Each method calls the function of the
    same name above with the part's :class:`KeyStore`."""

    store: KeyStore

    def public(self, key: Any, user: Any | None) -> ApiKeyPublic:
        return public(self.store, key, user)

    def create(
        self, session: Session, data: ApiKeyCreate, *, actor: str | None = None
    ) -> ApiKeyCreated:
        key, user, token = create(self.store, session, data, actor=actor)
        return ApiKeyCreated(**self.public(key, user).model_dump(), token=token)

    def get(self, session: Session, key_id: int) -> ApiKeyPublic:
        return self.public(*get_key(self.store, session, key_id))

    def update(
        self, session: Session, key_id: int, patch: ApiKeyUpdate, *, actor: str | None = None
    ) -> ApiKeyPublic:
        return self.public(*update(self.store, session, key_id, patch, actor=actor))

    def set_enabled(
        self, session: Session, key_id: int, *, enabled: bool, actor: str | None = None
    ) -> ApiKeyPublic:
        return self.public(*set_enabled(self.store, session, key_id, enabled=enabled, actor=actor))

    def rotate(
        self, session: Session, key_id: int, body: ApiKeyRotate, *, actor: str | None = None
    ) -> ApiKeyRotated:
        new, user, token, old = rotate(self.store, session, key_id, body, actor=actor)
        return ApiKeyRotated(
            **self.public(new, user).model_dump(), token=token, old_key=self.public(old, user)
        )

    def page(
        self, session: Session, *, cursor: str | None, limit: int, user_id: int | None = None
    ) -> tuple[list[ApiKeyPublic], str | None]:
        rows, next_cursor = page(self.store, session, cursor=cursor, limit=limit, user_id=user_id)
        return [self.public(k, u) for k, u in rows], next_cursor

    def refusals(
        self,
        session: Session,
        *,
        cursor: str | None,
        limit: int,
        key_id: int | None = None,
        reason: str | None = None,
    ) -> tuple[list[KeyRefusalPublic], str | None]:
        return refusals_page(
            session,
            self.store.refusal_model,
            self.store.key_model,
            cursor=cursor,
            limit=limit,
            key_id=key_id,
            reason=reason,
        )


# ---- users and keys made by code (provisioning, the admin CLI, tests) -------------------
def add_user(
    session: Session,
    user_model: Any,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
) -> Any:
    """Add a user (not committed); the password, if any, is stored as an argon2 hash."""
    from mailshot.core.access.tokens import hash_password

    user = user_model(
        email=email.strip().lower(),
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
        enabled=True,
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, user_model: Any, email: str) -> Any:
    return session.scalar(select(user_model).where(user_model.email == email.strip().lower()))


def issue_role_key(
    store: KeyStore, session: Session, *, user: Any, name: str, description: str | None = None
) -> tuple[Any, str]:
    """Issue a key (not committed) with the scopes of its user's role; return the row and
    the token, shown once."""
    return issue_key(
        session,
        store.key_model,
        product_prefix=store.product_prefix,
        name=name,
        user_id=user.id,
        scopes=store.role_scopes[user.role],
        description=description,
    )
