"""The per-installation secret behind the pages' login-form tokens and signed messages:
``<data_dir>/session-secret`` (0600), made once from 32 random bytes and linked into place
so that every process of an installation agrees on it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "session-secret"


def load_or_create(data_dir: Path, name: str = FILE_NAME) -> str:
    """Return the installation's secret kept in ``name`` (default: the session secret),
    creating it (mode 0600) if it is missing."""
    path = data_dir / name
    if path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
