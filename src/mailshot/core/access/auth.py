"""Bearer-token authentication against a part's own API-key table: find the key, check its
state (:func:`mailshot.core.access.tokens.check_key_state`), count every refusal
(:mod:`mailshot.core.access.refusals`) and the last use, and raise the catalogued error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.access.refusals import RefusalRecorder
from mailshot.core.access.tokens import (
    ADMIN_SCOPE,
    KeyRefusal,
    check_key_state,
    effective_scopes,
    parse_token,
    secret_matches,
)
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import read_only
from mailshot.core.errors import AppError, define

AUTH_ERRORS = {
    KeyRefusal.MISSING: define(
        "AUTH_MISSING",
        401,
        "This request carries no API key.",
        "Send the key as a header: Authorization: Bearer <key>.",
    ),
    KeyRefusal.MALFORMED: define(
        "AUTH_MALFORMED",
        401,
        "The API key is not in the form this service gives out.",
        "Copy the whole key as it was shown when it was created.",
    ),
    KeyRefusal.UNKNOWN: define(
        "AUTH_UNKNOWN_KEY",
        401,
        "This API key is not known here (it may have been deleted, or belong to another service).",
        "Create a new key under API keys and use it instead.",
    ),
    KeyRefusal.DISABLED: define(
        "AUTH_KEY_DISABLED",
        401,
        "The API key '{key_name}' is disabled.",
        "An administrator can enable it under API keys, or create a new one.",
    ),
    KeyRefusal.NOT_YET_VALID: define(
        "AUTH_KEY_NOT_YET_VALID",
        401,
        "The API key '{key_name}' is not valid before {valid_from}.",
        "Set its Valid From to a time in the past, or leave it blank.",
    ),
    KeyRefusal.EXPIRED: define(
        "AUTH_KEY_EXPIRED",
        401,
        "The API key '{key_name}' expired at {until}.",
        "Set its Until to a later time (or blank), or rotate the key.",
    ),
    KeyRefusal.USER_DISABLED: define(
        "AUTH_USER_DISABLED",
        401,
        "The API key '{key_name}' acts as user '{user}', who is disabled.",
        "Enable the user, or give the key another access-as user.",
    ),
    KeyRefusal.IP_NOT_PERMITTED: define(
        "AUTH_IP_NOT_PERMITTED",
        403,
        "The API key '{key_name}' may not be used from {client_ip}.",
        "Add this address to the key's permitted IPs, or use the key from a permitted one.",
    ),
}
AUTH_SCOPE_MISSING = define(
    "AUTH_SCOPE_MISSING",
    403,
    "The API key '{key_name}' may not {action}: it lacks the scope '{scope}'.",
    "Give the key the scope '{scope}', or use a key that has it.",
)
AUTH_ROLE_FORBIDS = define(
    "AUTH_ROLE_FORBIDS",
    403,
    "The API key '{key_name}' may not {action}: it holds the scope '{scope}', but it acts as "
    "'{user}', who is a {role} now, and a {role}'s keys may not use '{scope}'.",
    "Give the user '{user}' a role that allows '{scope}', or use a key of a user who may.",
)

#: Last-used times are written at most this often per key, to keep reads cheap.
LAST_USED_RESOLUTION = timedelta(seconds=30)


@dataclass
class Principal:
    """Who is making a request: the key, its access-as user and what they may do now.

    ``scopes`` are the key's scopes that its user's current role allows (what it may do);
    ``held_scopes`` all the key holds, to say why a scope held is not usable."""

    key_id: int
    key_name: str
    key_prefix: str
    user_id: int
    user_email: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    held_scopes: frozenset[str] = field(default_factory=frozenset)
    #: Records a refusal of this key (set by :func:`authenticate`), so a missing scope is
    #: in ``key_refusals`` like every other refused request.
    on_refused: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN_SCOPE in self.scopes

    def require(self, scope: str, action: str) -> None:
        if self.allows(scope):
            return
        spec, named = AUTH_SCOPE_MISSING, scope
        if scope in self.held_scopes:
            spec = AUTH_ROLE_FORBIDS
        elif ADMIN_SCOPE in self.held_scopes:  # held admin would imply it, if allowed
            spec, named = AUTH_ROLE_FORBIDS, ADMIN_SCOPE
        if self.on_refused is not None:
            self.on_refused(spec.code)
        raise AppError(
            spec,
            key_name=self.key_name,
            scope=named,
            action=action,
            user=self.user_email,
            role=self.role,
        )

    @property
    def actor(self) -> str:
        return f"{self.user_email} (key {self.key_prefix})"


def authenticate(
    sessions: sessionmaker[Session],
    *,
    authorization: str | None,
    product_prefix: str,
    key_model: Any,
    user_model: Any,
    refusals: RefusalRecorder,
    allowed_scopes: Callable[[str], frozenset[str]],
    client_ip: str | None,
    path: str,
) -> Principal:
    """Find and check the bearer key; return the principal (its scopes cut down to what
    ``allowed_scopes`` gives its user's role now) or raise the refusal's error."""

    def refuse(
        reason: KeyRefusal, prefix: str | None = None, key_id: int | None = None, **p: Any
    ) -> AppError:
        refusals.record(reason.value, prefix=prefix, key_id=key_id, client_ip=client_ip, path=path)
        return AppError(AUTH_ERRORS[reason], **p)

    if not authorization:
        raise refuse(KeyRefusal.MISSING)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refuse(KeyRefusal.MALFORMED)
    parsed = parse_token(token)
    if parsed is None or parsed.product != product_prefix:
        raise refuse(KeyRefusal.MALFORMED if parsed is None else KeyRefusal.UNKNOWN)
    prefix = parsed.display_prefix
    with read_only(sessions) as s:
        row = s.execute(
            select(key_model, user_model)
            .join(user_model, user_model.id == key_model.user_id)
            .where(key_model.public_id == parsed.public_id)
        ).first()
    if row is None or not secret_matches(parsed.secret, row[0].secret_hash):
        raise refuse(KeyRefusal.UNKNOWN, prefix)
    key, user = row
    now = utcnow()
    reason = check_key_state(
        enabled=key.enabled,
        valid_from=key.valid_from,
        until=key.until,
        user_enabled=user.enabled,
        permitted_ips=key.permitted_ips,
        client_ip=client_ip,
        now=now,
    )
    if reason is not None:
        raise refuse(
            reason,
            prefix,
            key.id,
            key_name=key.name,
            valid_from=key.valid_from.isoformat() if key.valid_from else "",
            until=key.until.isoformat() if key.until else "",
            user=user.email,
            client_ip=client_ip or "an unknown address",
        )
    if (
        key.last_used_at is None
        or now - key.last_used_at > LAST_USED_RESOLUTION
        or (key.last_used_ip != client_ip)
    ):
        with sessions() as s, s.begin():
            s.execute(
                update(key_model)
                .where(key_model.id == key.id)
                .values(last_used_at=now, last_used_ip=client_ip)
            )
    held = frozenset(key.scopes or ())
    key_id = key.id
    return Principal(
        key_id=key.id,
        key_name=key.name,
        key_prefix=prefix,
        user_id=user.id,
        user_email=user.email,
        role=user.role,
        scopes=effective_scopes(held, allowed_scopes(user.role)),
        held_scopes=held,
        on_refused=lambda code: refusals.record(
            code, prefix=prefix, key_id=key_id, client_ip=client_ip, path=path
        ),
    )


def issue_key(
    session: Session,
    key_model: Any,
    *,
    product_prefix: str,
    name: str,
    user_id: int,
    scopes: list[str],
    description: str | None = None,
    permitted_ips: list[str] | None = None,
    valid_from: Any = None,
    until: Any = None,
    rotated_from_id: int | None = None,
) -> tuple[Any, str]:
    """Add a new key row (not committed) and return it with its token, shown once."""
    from mailshot.core.access.tokens import new_key

    made = new_key(product_prefix)
    key = key_model(
        public_id=made.public_id,
        name=name,
        description=description,
        user_id=user_id,
        secret_hash=made.secret_hash,
        scopes=sorted(set(scopes)),
        permitted_ips=permitted_ips or [],
        valid_from=valid_from,
        until=until,
        enabled=True,
        rotated_from_id=rotated_from_id,
    )
    session.add(key)
    session.flush()
    return key, made.token
