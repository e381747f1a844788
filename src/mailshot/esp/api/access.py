"""Routes of ESP users and API keys (scope ``admin``): parse, authorise, call the service.
The key routes are the ones both parts serve (:mod:`mailshot.core.access.routes`): a token is in
the answer to a create or a rotate only; no other answer carries a secret or its digest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.access.routes import add_key_routes
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.esp import scopes
from mailshot.esp.api.deps import SessionDep, scoped
from mailshot.esp.schemas.access import UserCreate, UserPublic, UserUpdate
from mailshot.esp.services import access as service

router = APIRouter(tags=["users and API keys"])
admin = scoped(scopes.ADMIN, "manage users and API keys")
Admin = Annotated[Principal, Depends(admin)]
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
def update_user(session: SessionDep, who: Admin, user_id: Id, body: UserUpdate) -> UserPublic:
    """Change a user; a disabled user's keys are refused with AUTH_USER_DISABLED."""
    return UserPublic.model_validate(
        service.update_user(session, user_id, body, by_user_id=who.user_id)
    )


add_key_routes(router, service.KEYS, admin)
