"""FastAPI dependencies of the ESP API: the shared session dependencies
(:mod:`mailshot.core.web.deps`) and the principal authenticated against the ESP's own keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.access.auth import Principal
from mailshot.core.web.deps import (
    SessionDep,
    SessionsDep,
    SettingsDep,
    get_session,
    get_sessions,
    get_settings,
    principal_dependency,
    scope_checker,
)
from mailshot.esp.services.access import PRODUCT_PREFIX, STORE

__all__ = [
    "PRODUCT_PREFIX",
    "ChunkSessionsDep",
    "PrincipalDep",
    "SessionDep",
    "SessionsDep",
    "SettingsDep",
    "get_principal",
    "get_session",
    "get_sessions",
    "get_settings",
    "scoped",
]


def get_chunk_sessions(request: Request) -> sessionmaker[Session]:
    """Sessions for writing recipient chunks
    (see :func:`mailshot.core.db.engine.make_unchecked_writer`)."""
    sessions: sessionmaker[Session] = request.app.state.chunk_sessions
    return sessions


ChunkSessionsDep = Annotated[sessionmaker[Session], Depends(get_chunk_sessions)]

get_principal = principal_dependency(STORE)
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(scope: str, action: str) -> Callable[[Principal], Principal]:
    """A dependency that requires ``scope`` of the caller's key."""
    return scope_checker(get_principal, scope, action)
