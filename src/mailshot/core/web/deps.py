"""FastAPI dependencies every part's API shares: the settings, the session factory, a
request-scoped database session, and the bearer-key principal of a part.

A GET runs in a read transaction (it never takes SQLite's write lock); every other method
runs in a write transaction. Services own the transaction boundary: a service that writes
commits; whatever is left uncommitted when the request ends is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.access.auth import Principal, authenticate
from mailshot.core.access.store import KeyStore
from mailshot.core.db.engine import begin_read
from mailshot.core.settings import Settings


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
            begin_read(session)
        try:
            yield session
        finally:
            session.rollback()


#: Declares the bearer scheme in the OpenAPI document (it refuses nothing itself).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key of the part: `Authorization: Bearer mscrm_...` (CRM) or "
    "`Bearer msesp_...` (ESP).",
)

SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def authenticate_in(
    part: Any, store: KeyStore, request: Request, authorization: str | None
) -> Principal:
    """Authenticate ``request`` against the keys of the part app ``part`` (its sessions and
    refusal tally), as the part's own routes do; for a route outside the part (the
    combined ``/metrics``)."""
    return authenticate(
        part.state.sessions,
        authorization=authorization,
        product_prefix=store.product_prefix,
        key_model=store.key_model,
        user_model=store.user_model,
        refusals=part.state.key_refusals,
        allowed_scopes=store.allowed_scopes,
        client_ip=request.client.host if request.client else None,
        path=request.url.path,
    )


def principal_dependency(store: KeyStore) -> Callable[..., Principal]:
    """The dependency that authenticates a request against one part's key tables."""

    def get_principal(
        request: Request,
        _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        # The header as sent: keyauth tells a missing key from a malformed one itself.
        return authenticate_in(request.app, store, request, request.headers.get("authorization"))

    return get_principal


def scope_checker(principal_dep: Any, scope: str, action: str) -> Callable[[Principal], Principal]:
    """A dependency that requires ``scope`` of the caller's key."""

    # A default, not an Annotated hint: the hint would be a string (postponed evaluation)
    # naming a local variable that FastAPI cannot resolve.
    def check(principal: Principal = Depends(principal_dep)) -> Principal:
        principal.require(scope, action)
        return principal

    return check
