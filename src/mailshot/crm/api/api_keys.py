"""Routes of the CRM's API keys and refused key uses (scope ``admin``): parse, authorise,
call :mod:`mailshot.crm.services.api_keys`. A token is in the answer to a create or a
rotate only; no other answer carries a secret or its digest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.api_keys import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
    KeyRefusalPublic,
)
from mailshot.crm.services import api_keys as service
from mailshot.keyauth import Principal
from mailshot.paging import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(tags=["API keys"])
Admin = Annotated[Principal, Depends(scoped(scopes.ADMIN, "manage API keys"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/api-keys", summary="API keys (prefix and settings, never the secret)")
def list_api_keys(
    session: SessionDep,
    _: Admin,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    user_id: int | None = None,
) -> Page[ApiKeyPublic]:
    items, next_cursor = service.page(session, cursor=cursor, limit=limit, user_id=user_id)
    return Page(items=items, next_cursor=next_cursor, limit=limit)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, summary="Issue an API key")
def create_api_key(session: SessionDep, who: Admin, body: ApiKeyCreate) -> ApiKeyCreated:
    """The answer carries the ``token``: shown this once, it cannot be shown again."""
    return service.create(session, body, actor=who.actor)


@router.get("/api-keys/{key_id}", summary="One API key")
def get_api_key(session: SessionDep, _: Admin, key_id: int) -> ApiKeyPublic:
    return service.get(session, key_id)


@router.patch("/api-keys/{key_id}", summary="Change an API key's settings")
def update_api_key(
    session: SessionDep, who: Admin, key_id: int, body: ApiKeyUpdate
) -> ApiKeyPublic:
    return service.update(session, key_id, body, actor=who.actor)


@router.post("/api-keys/{key_id}/disable", summary="Disable a key (refused: AUTH_KEY_DISABLED)")
def disable_api_key(session: SessionDep, who: Admin, key_id: int) -> ApiKeyPublic:
    return service.set_enabled(session, key_id, enabled=False, actor=who.actor)


@router.post("/api-keys/{key_id}/enable", summary="Enable a key again")
def enable_api_key(session: SessionDep, who: Admin, key_id: int) -> ApiKeyPublic:
    return service.set_enabled(session, key_id, enabled=True, actor=who.actor)


@router.post(
    "/api-keys/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="A new secret with the same settings; the old key stays valid for the overlap",
)
def rotate_api_key(
    session: SessionDep, who: Admin, key_id: int, body: ApiKeyRotate | None = None
) -> ApiKeyRotated:
    return service.rotate(session, key_id, body or ApiKeyRotate(), actor=who.actor)


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
