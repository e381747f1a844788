"""FastAPI dependencies of the CRM API: the database session and the calling principal.

A GET runs in a read transaction (it never takes SQLite's write lock); every other method
runs in a write transaction. Services own the transaction boundary: a service that writes
commits; whatever is left uncommitted when the request ends is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker

from mailshot.crm.models import ApiKey, KeyRefusalRecord, User
from mailshot.keyauth import Principal, authenticate
from mailshot.settings import Settings

PRODUCT_PREFIX = "mscrm"


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    sessions = get_sessions(request)
    with sessions() as session:
        if request.method in ("GET", "HEAD"):
            session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        try:
            yield session
        finally:
            session.rollback()


def get_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    return authenticate(
        get_sessions(request),
        authorization=authorization,
        product_prefix=PRODUCT_PREFIX,
        key_model=ApiKey,
        user_model=User,
        refusal_model=KeyRefusalRecord,
        client_ip=request.client.host if request.client else None,
        path=request.url.path,
    )


SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(scope: str, action: str) -> Callable[[Principal], Principal]:
    """A dependency that requires ``scope`` of the caller's key."""

    def check(principal: PrincipalDep) -> Principal:
        principal.require(scope, action)
        return principal

    return check
