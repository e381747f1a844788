"""Routes of ESP users and API keys (admin): parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.schemas.access import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    UserCreate,
    UserPublic,
)
from mailshot.esp.services import access as service
from mailshot.keyauth import Principal
from mailshot.paging import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(tags=["users and API keys"])
Admin = Annotated[Principal, Depends(scoped(scopes.ADMIN, "manage users and API keys"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/users")
def list_users(
    session: SessionDep, _: Admin, limit: Limit = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[UserPublic]:
    rows, next_cursor = service.users_page(session, cursor=cursor, limit=limit)
    return Page(
        items=[UserPublic.model_validate(r) for r in rows], next_cursor=next_cursor, limit=limit
    )


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(session: SessionDep, _: Admin, body: UserCreate) -> UserPublic:
    """Create a user (the password, if any, is stored argon2-hashed)."""
    return UserPublic.model_validate(service.add_user(session, body))


@router.get("/api-keys")
def list_api_keys(
    session: SessionDep, _: Admin, limit: Limit = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[ApiKeyPublic]:
    """Keys with their prefix, never their secret or its hash."""
    rows, next_cursor = service.keys_page(session, cursor=cursor, limit=limit)
    return Page(items=[service.key_public(k) for k in rows], next_cursor=next_cursor, limit=limit)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_api_key(session: SessionDep, _: Admin, body: ApiKeyCreate) -> ApiKeyCreated:
    """Issue a key; its ``token`` is in this answer only and cannot be shown again."""
    key, token = service.add_key(session, body)
    return ApiKeyCreated(**service.key_public(key).model_dump(), token=token)


@router.post("/api-keys/{key_id}/disable")
def disable_api_key(session: SessionDep, _: Admin, key_id: int) -> ApiKeyPublic:
    """Disable a key: its requests are refused with AUTH_KEY_DISABLED."""
    return service.key_public(service.set_key_enabled(session, key_id, enabled=False))


@router.post("/api-keys/{key_id}/enable")
def enable_api_key(session: SessionDep, _: Admin, key_id: int) -> ApiKeyPublic:
    return service.key_public(service.set_key_enabled(session, key_id, enabled=True))
