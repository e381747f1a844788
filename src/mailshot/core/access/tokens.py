"""API-key primitives shared by the CRM and the ESP: keys ``<prefix>_<public id>_<secret>``
with only the secret's SHA-256 stored, password hashing, :func:`check_key_state` (may a
found key be used now) and :func:`role_allows` / :func:`effective_scopes` (what it may do)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: Passwords: argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane).
#: argon2-cffi's default (RFC 9106's 64 MiB, 4 lanes) made every sign-in attempt cost a
#: server 64 MiB. A hash records its own parameters, so hashes made with the old ones
#: still verify (:func:`password_needs_rehash` says when to store a new one).
PASSWORD_MEMORY_KIB = 19 * 1024
PASSWORD_TIME_COST = 2
PASSWORD_PARALLELISM = 1
_hasher = PasswordHasher(
    time_cost=PASSWORD_TIME_COST,
    memory_cost=PASSWORD_MEMORY_KIB,
    parallelism=PASSWORD_PARALLELISM,
)


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: ``token`` is shown once and never stored."""

    public_id: str
    token: str
    secret_hash: str

    @property
    def display_prefix(self) -> str:
        return self.token.rsplit("_", 1)[0] + "_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(product_prefix: str) -> NewKey:
    public_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = f"{product_prefix}_{public_id}_{secret}"
    return NewKey(public_id=public_id, token=token, secret_hash=hash_secret(secret))


@dataclass(frozen=True)
class ParsedToken:
    product: str
    public_id: str
    secret: str

    @property
    def display_prefix(self) -> str:
        return f"{self.product}_{self.public_id}_"


def parse_token(token: str) -> ParsedToken | None:
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return ParsedToken(product=parts[0], public_id=parts[1], secret=parts[2])


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


class KeyRefusal(StrEnum):
    """Why a key was refused. Each maps to its own error code in the part's catalogue."""

    MISSING = "AUTH_MISSING"
    MALFORMED = "AUTH_MALFORMED"
    UNKNOWN = "AUTH_UNKNOWN_KEY"
    DISABLED = "AUTH_KEY_DISABLED"
    NOT_YET_VALID = "AUTH_KEY_NOT_YET_VALID"
    EXPIRED = "AUTH_KEY_EXPIRED"
    USER_DISABLED = "AUTH_USER_DISABLED"
    IP_NOT_PERMITTED = "AUTH_IP_NOT_PERMITTED"


def check_key_state(
    *,
    enabled: bool,
    valid_from: datetime | None,
    until: datetime | None,
    user_enabled: bool,
    permitted_ips: list[str] | None,
    client_ip: str | None,
    now: datetime,
) -> KeyRefusal | None:
    """Return why a key may not be used at ``now`` from ``client_ip``, or None if it may."""
    if not enabled:
        return KeyRefusal.DISABLED
    if valid_from is not None and now < valid_from:
        return KeyRefusal.NOT_YET_VALID
    if until is not None and now >= until:
        return KeyRefusal.EXPIRED
    if not user_enabled:
        return KeyRefusal.USER_DISABLED
    if permitted_ips and not ip_permitted(client_ip, permitted_ips):
        return KeyRefusal.IP_NOT_PERMITTED
    return None


#: The scope that implies every other (on both parts).
ADMIN_SCOPE = "admin"


def role_allows(
    role: str, role_scopes: Mapping[str, Iterable[str]], all_scopes: Iterable[str]
) -> frozenset[str]:
    """The scopes a key acting as a user of ``role`` may hold: the role's own, or every scope
    when the role's include ``admin`` (which implies them all); none for an unknown role."""
    listed = frozenset(role_scopes.get(role, ()))
    return frozenset(all_scopes) | listed if ADMIN_SCOPE in listed else listed


def effective_scopes(key_scopes: Iterable[str], allowed: frozenset[str]) -> frozenset[str]:
    """What a key may do now: the scopes it holds that its user's role allows (a demoted
    user's key keeps its scopes on record, but not their use)."""
    return frozenset(key_scopes) & allowed


def ip_permitted(client_ip: str | None, networks: list[str]) -> bool:
    if client_ip is None:
        return False
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for net in networks:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's (re-hash it after a
    successful sign-in)."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False
