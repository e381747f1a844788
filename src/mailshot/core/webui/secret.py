"""The per-installation secret behind the pages' login-form tokens and signed messages.

It lives in ``<data_dir>/session-secret`` (mode 0600), made on first use from 32 random
bytes. Every process of one installation reads the same file, so a login form stays valid
across restarts and across server processes. (Sessions themselves are database rows:
:mod:`mailshot.core.webui.sessions`.)
The file is written under a temporary name and linked into place, so two processes
starting at once agree on one secret.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "session-secret"


def load_or_create(data_dir: Path) -> str:
    """Return the installation's session secret, creating it (mode 0600) if it is missing."""
    path = data_dir / FILE_NAME
    if path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
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
