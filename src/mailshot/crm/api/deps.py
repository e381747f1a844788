"""FastAPI dependencies of the CRM API: the shared session dependencies
(:mod:`mailshot.core.web.deps`) and the principal authenticated against the CRM's own keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

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
from mailshot.crm.services.api_keys import PRODUCT_PREFIX, STORE

__all__ = [
    "PRODUCT_PREFIX",
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

get_principal = principal_dependency(STORE)
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(scope: str, action: str) -> Callable[[Principal], Principal]:
    """A dependency that requires ``scope`` of the caller's key."""
    return scope_checker(get_principal, scope, action)
