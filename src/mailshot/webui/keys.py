"""The API-keys page both parts share (the key lifecycle is the same on both sides, see
:mod:`mailshot.keyadmin`): reading the create form into an ``ApiKeyCreate`` and rendering
the list with the new secret shown once. Each part supplies its own service calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response

from mailshot.keyadmin import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, KeyRefusalPublic
from mailshot.webui import forms
from mailshot.webui.pages import render

#: The keys page shows this many of the latest refused requests.
REFUSALS_SHOWN = 10


@dataclass(frozen=True)
class KeyRoutes:
    """Names of a part's key routes, for the shared template."""

    page: str
    create: str
    enabled: str
    rotate: str


def _utc(value: str | None) -> datetime | str | None:
    """A ``datetime-local`` field read as UTC (as the page says); other text is passed on
    for the schema to refuse by name."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_create(
    form: dict[str, Any], lists: dict[str, list[str]]
) -> tuple[ApiKeyCreate | None, forms.FieldErrors]:
    ips = (forms.text(form, "permitted_ips") or "").replace(",", " ").split()
    return forms.parse(
        ApiKeyCreate,
        {
            "name": forms.text(form, "name") or "",
            "user_id": forms.integer(form, "user_id"),
            "description": forms.text(form, "description"),
            "scopes": lists.get("scopes") or None,
            "permitted_ips": ips,
            "valid_from": _utc(forms.text(form, "valid_from")),
            "until": _utc(forms.text(form, "until")),
        },
    )


def render_keys(
    request: Request,
    *,
    routes: KeyRoutes,
    keys: list[ApiKeyPublic],
    refusals: list[KeyRefusalPublic],
    key_users: list[Any],
    all_scopes: tuple[str, ...],
    pager: dict[str, str | None],
    created: ApiKeyCreated | None = None,
    errors: forms.FieldErrors | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "webui/api_keys.html",
        {
            "title": "API keys",
            "active": routes.page,
            "routes": routes,
            "keys": keys,
            "refusals": refusals,
            "key_users": key_users,
            "all_scopes": all_scopes,
            "created": created,
            "new_token": created.token if created else None,
            "errors": errors or {},
            "values": values or {},
        }
        | pager,
        status_code=status,
    )
