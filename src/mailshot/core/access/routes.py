"""The API-key routes both parts serve (scope ``admin``): ``/api-keys`` (list, issue, read,
change, disable, enable, rotate) and ``/key-refusals``, added to a part's router over its
:class:`mailshot.core.access.service.KeyService`. A token is in the answer to a create or a rotate
only; no other answer carries a secret or its digest."""

# No ``from __future__ import annotations``: the routes are made in a function, and FastAPI
# could not resolve a postponed annotation naming its local ``Admin``.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from mailshot.core.access.auth import Principal
from mailshot.core.access.refusals import KeyRefusalPublic, flush_of
from mailshot.core.access.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
)
from mailshot.core.access.service import KeyService
from mailshot.core.web.deps import SessionDep
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def add_key_routes(router: APIRouter, keys: KeyService, admin: Callable[..., Principal]) -> None:
    """Add the key routes to ``router``; ``admin`` is the part's dependency that requires
    the scope ``admin``. Changes are audited as the caller where the part audits keys."""
    Admin = Annotated[Principal, Depends(admin)]  # noqa: N806 (a type, named like one)

    @router.get("/api-keys", summary="API keys (prefix and settings, never the secret)")
    def list_api_keys(
        session: SessionDep,
        _: Admin,
        limit: Limit = DEFAULT_LIMIT,
        cursor: str | None = None,
        user_id: Id | None = None,
    ) -> Page[ApiKeyPublic]:
        items, next_cursor = keys.page(session, cursor=cursor, limit=limit, user_id=user_id)
        return Page(items=items, next_cursor=next_cursor, limit=limit)

    @router.post("/api-keys", status_code=status.HTTP_201_CREATED, summary="Issue an API key")
    def create_api_key(session: SessionDep, who: Admin, body: ApiKeyCreate) -> ApiKeyCreated:
        """The answer carries the ``token``: shown this once, it cannot be shown again."""
        return keys.create(session, body, actor=who.actor)

    @router.get("/api-keys/{key_id}", summary="One API key")
    def get_api_key(session: SessionDep, _: Admin, key_id: Id) -> ApiKeyPublic:
        return keys.get(session, key_id)

    @router.patch("/api-keys/{key_id}", summary="Change an API key's settings")
    def update_api_key(
        session: SessionDep, who: Admin, key_id: Id, body: ApiKeyUpdate
    ) -> ApiKeyPublic:
        return keys.update(session, key_id, body, actor=who.actor)

    @router.post("/api-keys/{key_id}/disable", summary="Disable a key (refused: AUTH_KEY_DISABLED)")
    def disable_api_key(session: SessionDep, who: Admin, key_id: Id) -> ApiKeyPublic:
        return keys.set_enabled(session, key_id, enabled=False, actor=who.actor)

    @router.post("/api-keys/{key_id}/enable", summary="Enable a key again")
    def enable_api_key(session: SessionDep, who: Admin, key_id: Id) -> ApiKeyPublic:
        return keys.set_enabled(session, key_id, enabled=True, actor=who.actor)

    @router.post(
        "/api-keys/{key_id}/rotate",
        status_code=status.HTTP_201_CREATED,
        summary="A new secret with the same settings; the old key stays valid for the overlap",
    )
    def rotate_api_key(
        session: SessionDep, who: Admin, key_id: Id, body: ApiKeyRotate | None = None
    ) -> ApiKeyRotated:
        return keys.rotate(session, key_id, body or ApiKeyRotate(), actor=who.actor)

    @router.get(
        "/key-refusals", summary="Requests refused because of their key (counted), newest first"
    )
    def list_key_refusals(
        request: Request,
        session: SessionDep,
        _: Admin,
        limit: Limit = DEFAULT_LIMIT,
        cursor: str | None = None,
        key_id: Id | None = None,
        reason: Annotated[
            str | None, Query(description="A refusal code, e.g. AUTH_KEY_EXPIRED.")
        ] = None,
    ) -> Page[KeyRefusalPublic]:
        """Refused requests, one item per key, reason, address and path in each minute,
        with their ``count``. Another process's refusals of the last second may not be
        there yet."""
        flush_of(request.app)  # this process's tally, before the read
        items, next_cursor = keys.refusals(
            session, cursor=cursor, limit=limit, key_id=key_id, reason=reason
        )
        return Page(items=items, next_cursor=next_cursor, limit=limit)
