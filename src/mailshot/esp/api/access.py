"""Routes of ESP users and API keys (scope ``admin``): parse, authorise, call the service.
A token is in the answer to a create or a rotate only; no other answer carries a secret or
its digest. The key routes have the same shape as the CRM's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.schemas.access import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
    KeyRefusalPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
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


@router.patch("/users/{user_id}")
def update_user(session: SessionDep, who: Admin, user_id: int, body: UserUpdate) -> UserPublic:
    """Change a user; a disabled user's keys are refused with AUTH_USER_DISABLED."""
    return UserPublic.model_validate(
        service.update_user(session, user_id, body, by_user_id=who.user_id)
    )


@router.get("/api-keys", summary="API keys (prefix and settings, never the secret)")
def list_api_keys(
    session: SessionDep,
    _: Admin,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    user_id: int | None = None,
) -> Page[ApiKeyPublic]:
    items, next_cursor = service.keys_with_users_page(
        session, cursor=cursor, limit=limit, user_id=user_id
    )
    return Page(items=items, next_cursor=next_cursor, limit=limit)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, summary="Issue an API key")
def create_api_key(session: SessionDep, _: Admin, body: ApiKeyCreate) -> ApiKeyCreated:
    """The answer carries the ``token``: shown this once, it cannot be shown again."""
    return service.create(session, body)


@router.get("/api-keys/{key_id}", summary="One API key")
def get_api_key(session: SessionDep, _: Admin, key_id: int) -> ApiKeyPublic:
    return service.get(session, key_id)


@router.patch("/api-keys/{key_id}", summary="Change an API key's settings")
def update_api_key(session: SessionDep, _: Admin, key_id: int, body: ApiKeyUpdate) -> ApiKeyPublic:
    return service.update(session, key_id, body)


@router.post("/api-keys/{key_id}/disable", summary="Disable a key (refused: AUTH_KEY_DISABLED)")
def disable_api_key(session: SessionDep, _: Admin, key_id: int) -> ApiKeyPublic:
    return service.key_public(service.set_key_enabled(session, key_id, enabled=False))


@router.post("/api-keys/{key_id}/enable", summary="Enable a key again")
def enable_api_key(session: SessionDep, _: Admin, key_id: int) -> ApiKeyPublic:
    return service.key_public(service.set_key_enabled(session, key_id, enabled=True))


@router.post(
    "/api-keys/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="A new secret with the same settings; the old key stays valid for the overlap",
)
def rotate_api_key(
    session: SessionDep, _: Admin, key_id: int, body: ApiKeyRotate | None = None
) -> ApiKeyRotated:
    return service.rotate(session, key_id, body or ApiKeyRotate())


@router.get("/key-refusals", summary="Requests refused because of their key, newest first")
def list_key_refusals(
    session: SessionDep,
    _: Admin,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    key_id: int | None = None,
    reason: Annotated[
        str | None, Query(description="A refusal code, e.g. AUTH_KEY_EXPIRED.")
    ] = None,
) -> Page[KeyRefusalPublic]:
    items, next_cursor = service.refusals(
        session, cursor=cursor, limit=limit, key_id=key_id, reason=reason
    )
    return Page(items=items, next_cursor=next_cursor, limit=limit)
