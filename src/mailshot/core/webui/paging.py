"""Links for keyset-paged pages, shared by the CRM's and the ESP's pages: this page's
address with some query values replaced, and the "next" / "first page" links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request


def page_url(request: Request, **params: Any) -> str:
    """This page's address with ``params`` replacing its query values (None drops one)."""
    query = {k: v for k, v in request.query_params.items()}
    for k, v in params.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = str(v)
    path = request.url.path
    return f"{path}?{urlencode(query)}" if query else path


def pager(request: Request, next_cursor: str | None) -> dict[str, str | None]:
    return {
        "next_url": page_url(request, cursor=next_cursor) if next_cursor else None,
        "first_url": page_url(request, cursor=None) if request.query_params.get("cursor") else None,
    }
