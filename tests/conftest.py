"""Shared fixtures: every database-backed test runs on SQLite and on PostgreSQL.

SQLite: the migrations run once into template files, copied for each test.
PostgreSQL (127.0.0.1:5432, database ``test`` for administration): each test run creates
databases of its own (named after the run and the xdist worker), migrates them once, and
empties every table (and restarts its ids) before each test, so runs and tests never collide.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from mailshot.app.server import create_app
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.db.migrate import upgrade
from mailshot.core.settings import Settings
from mailshot.crm import models as crm_models
from mailshot.crm.services import access as crm_access
from mailshot.esp import models as esp_models
from mailshot.esp.services import access as esp_access

PG_ADMIN_URL = os.environ.get(
    "MAILSHOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def run_id(worker_id: str) -> str:
    return f"{uuid.uuid4().hex[:8]}_{worker_id}"


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("templates")
    out = {}
    for part in ("crm", "esp"):
        path = folder / f"{part}.db"
        upgrade(part, f"sqlite:///{path}")  # type: ignore[arg-type]
        out[part] = path
    return out


@pytest.fixture(scope="session")
def pg_databases(run_id: str) -> Iterator[dict[str, str]]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {part: f"ms_{run_id}_{part}".lower() for part in ("crm", "esp")}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    urls = {part: _pg_url(name) for part, name in names.items()}
    for part, url in urls.items():
        upgrade(part, url)  # type: ignore[arg-type]
    yield urls
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str, metadata_tables: list[str]) -> None:
    """Empty every table and restart the sequences that were used. ``DELETE`` with the
    foreign-key triggers off (``session_replication_role``, as the superuser the tests
    connect as) takes a tenth of ``TRUNCATE``'s time on tables this small; a role that may
    not set it gets ``TRUNCATE``."""
    engine = make_unpooled_engine(url)
    with engine.begin() as conn:
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        if not superuser.scalar():
            names = ", ".join(f'"{t}"' for t in metadata_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in metadata_tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            used = conn.execute(
                text(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) "
                    "FROM pg_sequences WHERE last_value IS NOT NULL"
                )
            ).scalars()
            for sequence in list(used):
                conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if backend == "sqlite":
        templates: dict[str, Path] = request.getfixturevalue("sqlite_templates")
        for part, path in templates.items():
            shutil.copy(path, data_dir / f"{part}.db")
        return Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
    urls: dict[str, str] = request.getfixturevalue("pg_databases")
    _truncate_pg(urls["crm"], list(crm_models.Base.metadata.tables))
    _truncate_pg(urls["esp"], list(esp_models.Base.metadata.tables))
    return Settings(
        data_dir=data_dir,
        crm_database_url=urls["crm"],
        esp_database_url=urls["esp"],
        _env_file=None,  # type: ignore[call-arg]
    )


@dataclass
class Keys:
    """Tokens for the test users: a CRM admin, a CRM marketer, the integration on both sides."""

    crm_admin: str
    crm_marketer: str
    crm_integration: str
    esp_admin: str
    esp_integration: str


def _crm_session(settings: Settings) -> Session:
    return make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))()


def _esp_session(settings: Settings) -> Session:
    return make_sessionmaker(make_unpooled_engine(settings.esp_db_url()))()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    with _crm_session(settings) as s:
        admin = crm_access.create_user(s, email="admin@example.com", name="Admin", role="admin")
        marketer = crm_access.create_user(
            s, email="marketer@example.com", name="Marketer", role="marketer"
        )
        integ = crm_access.create_user(
            s, email="bridge@example.com", name="Integration", role="integration"
        )
        _, a = crm_access.create_key(s, user=admin, name="admin key")
        _, m = crm_access.create_key(s, user=marketer, name="marketer key")
        _, i = crm_access.create_key(s, user=integ, name="integration key")
        s.commit()
    with _esp_session(settings) as s:
        eadmin = esp_access.create_user(s, email="admin@example.com", name="Admin", role="admin")
        einteg = esp_access.create_user(
            s, email="bridge@example.com", name="Integration", role="integration"
        )
        _, ea = esp_access.create_key(s, user=eadmin, name="admin key")
        _, ei = esp_access.create_key(s, user=einteg, name="integration key")
        s.commit()
    return Keys(crm_admin=a, crm_marketer=m, crm_integration=i, esp_admin=ea, esp_integration=ei)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The embedded app, in-process (real databases; no network)."""
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def crm(client: TestClient, keys: Keys) -> TestClient:
    """A client whose requests carry the CRM admin's key; paths are relative to /crm/api/v1."""
    client.headers["Authorization"] = f"Bearer {keys.crm_admin}"
    client.base_url = client.base_url.join("/crm/api/v1/")
    return client


@pytest.fixture
def esp(client: TestClient, keys: Keys) -> TestClient:
    """A client whose requests carry the ESP admin's key; paths are relative to /esp/api/v1."""
    client.headers["Authorization"] = f"Bearer {keys.esp_admin}"
    client.base_url = client.base_url.join("/esp/api/v1/")
    return client
