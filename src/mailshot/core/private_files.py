"""Folders and files that hold personal data or secrets (the data folder, the SQLite
databases and their WAL files, uploaded imports, the credentials): mailshot creates its
folders 0700 and its files 0600, whatever the umask, so that only the account running it
can read them. Folders and files that exist already are left as they are (a database may
live in a folder others share, such as ``/tmp``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """``path`` as a folder: created with any missing parents, each 0700."""
    missing: list[Path] = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # made meanwhile by another process: theirs
            continue
        made.chmod(FOLDER_MODE)  # mkdir's mode went through the umask
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 (its folder too) unless it exists. SQLite gives a
    database's WAL and shared-memory files the mode of the database file, so a database
    created here is 0600 with them."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    return path


def open_private(path: Path) -> BinaryIO:
    """Open ``path`` for writing from its start (created, or truncated), 0600 either way
    (its folder 0700 if made here)."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")
