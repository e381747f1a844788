"""Autogenerate a migration for one part from the difference between its models and a fresh
SQLite database at head.  Usage: python scripts/new_migration.py crm "add foo" """

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from mailshot.core.db.migrate import alembic_config, upgrade


def main() -> None:
    part, message = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'db.sqlite'}"
        upgrade(part, url)  # type: ignore[arg-type]
        command.revision(alembic_config(part, url=url), message=message, autogenerate=True)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
