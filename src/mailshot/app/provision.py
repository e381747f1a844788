"""First-run provisioning of the embedded default (:func:`ensure`): migrate both databases,
create the admin and integration users and their API keys (the CLI's for ``mailshot send``
too), and save the keys in the credentials file. Idempotent, and it heals a key missing or
unknown to the database."""

from __future__ import annotations

import fcntl
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mailshot.core import credentials as creds_store
from mailshot.core.access.tokens import parse_token, secret_matches
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.db.migrate import Part, upgrade
from mailshot.core.private_files import open_private, private_folder
from mailshot.core.settings import Settings
from mailshot.crm.models import ApiKey as CrmApiKey
from mailshot.crm.services import access as crm_access
from mailshot.esp.models import EspApiKey
from mailshot.esp.services import access as esp_access

__all__ = ["ADMIN_EMAIL", "ProvisionResult", "ensure", "migrate_all", "migrate_part"]

ADMIN_EMAIL = "admin@example.com"
ADMIN_NAME = "Administrator"
INTEGRATION_NAME = "Integration (bridge)"
INTEGRATION_KEY_NAME = "bridge (provisioned)"
CLI_KEY_NAME = "mailshot CLI (provisioned)"


@dataclass
class ProvisionResult:
    """What :func:`ensure` found and did. ``admin_password`` is set only when the admin was
    created by this run: it is shown once and never stored in clear."""

    credentials_file: Path
    admin_email: str = ADMIN_EMAIL
    admin_password: str | None = None
    #: Which parts' admin users the password is for (both on a first run).
    password_for: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    @property
    def already_provisioned(self) -> bool:
        return not self.created

    @property
    def first_run(self) -> bool:
        return self.admin_password is not None


@contextmanager
def _provision_lock(data_dir: Path) -> Iterator[None]:
    """One provisioning at a time per data folder (``serve`` and ``worker`` may start
    together)."""
    private_folder(data_dir)
    with open_private(data_dir / ".provision.lock") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _key_is_live(session: Session, key_model: Any, token: SecretStr | None, prefix: str) -> bool:
    """Whether ``token`` names a key of ``key_model`` that exists and whose secret matches.

    A key that an administrator disabled (or that expired) still counts: provisioning only
    replaces a key that is lost, never silently undoes an administrator's decision. The
    doctor reports such a key, with its fix."""
    if token is None:
        return False
    parsed = parse_token(token.get_secret_value())
    if parsed is None or parsed.product != prefix:
        return False
    row = session.scalar(select(key_model).where(key_model.public_id == parsed.public_id))
    return row is not None and secret_matches(parsed.secret, row.secret_hash)


@dataclass(frozen=True)
class _Part:
    """One part as provisioning sees it: its name in messages, its access service (users
    and keys made by code) and its key table and token prefix."""

    side: str
    access: Any
    key_model: Any
    prefix: str


_CRM = _Part("CRM", crm_access, CrmApiKey, "mscrm")
_ESP = _Part("ESP", esp_access, EspApiKey, "msesp")


@contextmanager
def _session(url: str) -> Iterator[Session]:
    """A session on ``url`` that commits when the block ends without an error."""
    engine = make_unpooled_engine(url)
    session = make_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    finally:
        session.close()
        engine.dispose()


def _ensure_user(
    session: Session,
    part: _Part,
    result: ProvisionResult,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
) -> Any:
    """The user with ``email`` on one part, made on first run."""
    user = part.access.find_user(session, email)
    if user is None:
        user = part.access.create_user(
            session, email=email, name=name, role=role, password=password
        )
        result.created.append(f"{part.side} {role} user")
        if password:
            result.admin_password = password
            result.password_for.append(part.side)
    return user


def _ensure_users(
    session: Session, part: _Part, result: ProvisionResult, password: str
) -> tuple[Any, Any]:
    """The part's admin user (with ``password`` when made now) and its integration user."""
    admin = _ensure_user(
        session, part, result, email=ADMIN_EMAIL, name=ADMIN_NAME, role="admin", password=password
    )
    integ = _ensure_user(
        session,
        part,
        result,
        email=part.access.INTEGRATION_EMAIL,
        name=INTEGRATION_NAME,
        role="integration",
    )
    return admin, integ


def _ensure_key(
    session: Session,
    part: _Part,
    held: SecretStr | None,
    result: ProvisionResult,
    *,
    label: str,
    user: Any,
    name: str,
    description: str,
) -> SecretStr | None:
    """A new token when the one in the credentials file is lost (unknown or missing);
    None when it is still known (even if an administrator disabled it)."""
    if _key_is_live(session, part.key_model, held, part.prefix):
        return None
    _, token = part.access.create_key(session, user=user, name=name, description=description)
    result.created.append(f"{part.side} {label}")
    return SecretStr(token)


def _ensure_integration_key(
    session: Session, part: _Part, held: SecretStr | None, result: ProvisionResult, user: Any
) -> SecretStr | None:
    return _ensure_key(
        session,
        part,
        held,
        result,
        label="integration key",
        user=user,
        name=INTEGRATION_KEY_NAME,
        description="The bridge's key, made on first run.",
    )


def _ensure_crm(
    url: str, result: ProvisionResult, creds: creds_store.Credentials, password: str
) -> creds_store.Credentials:
    with _session(url) as session:
        admin, integ = _ensure_users(session, _CRM, result, password)
        made = _ensure_integration_key(session, _CRM, creds.crm_integration_key, result, integ)
        creds.crm_integration_key = made or creds.crm_integration_key
        made = _ensure_key(
            session,
            _CRM,
            creds.cli_key,
            result,
            label="CLI key",
            user=admin,
            name=CLI_KEY_NAME,
            description="The `mailshot` command line's key, made on first run.",
        )
        creds.cli_key = made or creds.cli_key
    return creds


def _ensure_esp(
    url: str, result: ProvisionResult, creds: creds_store.Credentials, password: str
) -> creds_store.Credentials:
    with _session(url) as session:
        admin, integ = _ensure_users(session, _ESP, result, password)
        made = _ensure_integration_key(session, _ESP, creds.esp_integration_key, result, integ)
        creds.esp_integration_key = made or creds.esp_integration_key
        made = _ensure_key(
            session,
            _ESP,
            creds.esp_cli_key,
            result,
            label="CLI key",
            user=admin,
            name=CLI_KEY_NAME,
            description="The `mailshot send` command's key, made on first run.",
        )
        creds.esp_cli_key = made or creds.esp_cli_key
    return creds


def _make_sqlite_folder(url: str) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        private_folder(Path(u.database).parent)


def migrate_part(part: Part, url: str) -> None:
    """Bring one part's database up to its latest revision (creating a SQLite file's
    folder as needed)."""
    _make_sqlite_folder(url)
    upgrade(part, url)


def migrate_all(settings: Settings) -> None:
    """Bring both databases up to the latest revision."""
    migrate_part("crm", settings.crm_db_url())
    migrate_part("esp", settings.esp_db_url())


def ensure(settings: Settings, *, migrate: bool = True) -> ProvisionResult:
    """Migrate both databases (unless the caller just did) and make sure the first-run
    users and keys exist."""
    if migrate:
        migrate_all(settings)
    result = ProvisionResult(credentials_file=settings.credentials_file)
    with _provision_lock(settings.data_dir):
        creds = creds_store.load(settings.credentials_file)
        password = secrets.token_urlsafe(12)
        creds = _ensure_crm(settings.crm_db_url(), result, creds, password)
        creds = _ensure_esp(settings.esp_db_url(), result, creds, password)
        if result.created or creds.admin_email != ADMIN_EMAIL:
            creds.admin_email = ADMIN_EMAIL
            creds_store.save(settings.credentials_file, creds)
    return result
