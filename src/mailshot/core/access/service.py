"""The API-key lifecycle, shared by the CRM and the ESP over each part's own tables:
create, list, read, change, disable, enable, rotate (a new secret; the old key may stay
valid for an overlap), and the keys and users made by code. :class:`KeyService` answers
in the public schemas for the routes and the pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailshot.core.access.auth import issue_key
from mailshot.core.access.refusals import KeyRefusalPublic, refusals_page
from mailshot.core.access.schemas import (
    SHOWN_ONCE,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
    KeyState,
)
from mailshot.core.access.store import (
    KEY_SCOPES_BEYOND_ROLE,
    AuditFn,
    KeyStore,
    check_dates,
    check_networks,
    check_scopes,
    check_within_role,
    key_state,
    public,
)
from mailshot.core.clock import utcnow
from mailshot.core.errors import NOT_FOUND, AppError
from mailshot.core.web.paging import decode_cursor, encode_cursor

__all__ = [  # the schemas and the store are named here too, for the callers of one module
    "KEY_SCOPES_BEYOND_ROLE",
    "SHOWN_ONCE",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeyRotate",
    "ApiKeyRotated",
    "ApiKeyUpdate",
    "AuditFn",
    "KeyService",
    "KeyState",
    "KeyStore",
    "add_user",
    "check_within_role",
    "create",
    "find_user",
    "get_key",
    "get_user",
    "issue_role_key",
    "key_state",
    "page",
    "public",
    "rotate",
    "set_enabled",
    "update",
]


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
    check_scopes(store, data.scopes)
    networks = check_networks(data.permitted_ips)
    check_dates(store, data.valid_from, data.until)
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
        check_scopes(store, values["scopes"])
        values["scopes"] = sorted(set(values["scopes"]))
        check_within_role(store, user, values["scopes"])
    if "permitted_ips" in values:
        values["permitted_ips"] = check_networks(values["permitted_ips"])
    check_dates(store, values.get("valid_from", key.valid_from), values.get("until", key.until))
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
    check_dates(store, None if body.until is None else at, body.until)
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
