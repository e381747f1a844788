"""Routes of the Users resource (scope ``admin``): parse, authorise, call the service.
Password hashes are never returned."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Id
from mailshot.crm import scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.users import UserCreate, UserPublic, UserUpdate
from mailshot.crm.services import users as service

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, Depends(scoped(scopes.ADMIN, "manage users"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("")
def list_users(
    session: SessionDep,
    _: Admin,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    q: Annotated[str | None, Query(description="Part of the name or address.")] = None,
) -> Page[UserPublic]:
    rows, next_cursor = service.list_page(session, cursor=cursor, limit=limit, q=q)
    return Page(items=[UserPublic.of(r) for r in rows], next_cursor=next_cursor, limit=limit)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(session: SessionDep, who: Admin, body: UserCreate) -> UserPublic:
    return UserPublic.of(service.create(session, body, by=who))


@router.get("/{user_id}")
def get_user(session: SessionDep, _: Admin, user_id: Id) -> UserPublic:
    return UserPublic.of(service.get(session, user_id))


@router.patch("/{user_id}")
def update_user(session: SessionDep, who: Admin, user_id: Id, body: UserUpdate) -> UserPublic:
    return UserPublic.of(service.update(session, user_id, body, by=who))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(session: SessionDep, who: Admin, user_id: Id) -> None:
    service.delete(session, user_id, by=who)
