"""Alembic migrations, run from code: each part (``crm``, ``esp``) has its own migration
folder, its own version table and its own database. The same migrations run on SQLite and
PostgreSQL (batch mode makes ALTERs work on SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from mailshot.core.db.engine import make_unpooled_engine

Part = Literal["crm", "esp"]
PARTS: tuple[Part, ...] = ("crm", "esp")


def alembic_config(part: Part, url: str | None = None, engine: Engine | None = None) -> Config:
    folder = Path(__file__).resolve().parents[2] / part / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("version_table", f"alembic_version_{part}")
    cfg.attributes["part"] = part
    if engine is not None:
        cfg.attributes["engine"] = engine
    elif url is not None:
        cfg.attributes["engine"] = make_unpooled_engine(url)
    return cfg


def upgrade(part: Part, url: str) -> None:
    """Bring the database at ``url`` up to the latest revision of ``part``."""
    engine = make_unpooled_engine(url)
    try:
        command.upgrade(alembic_config(part, engine=engine), "head")
    finally:
        engine.dispose()


def check(part: Part, url: str) -> None:
    """Raise if the models of ``part`` differ from its migrations (alembic check)."""
    engine = make_unpooled_engine(url)
    try:
        command.check(alembic_config(part, engine=engine))
    finally:
        engine.dispose()
