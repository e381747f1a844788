"""Routes of Integrated Campaigns (keyed by the CRM mailshot id) and of campaigns (keyed
by the ESP's id): parse, authorise, call the service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from mailshot.contracts.campaign import (
    CampaignPublic,
    CampaignSummary,
    FinalizeRequest,
    FinalizeResult,
    IntegratedCampaignPut,
)
from mailshot.contracts.chunks import RecipientChunk, RecipientsWritten, recipient_chunk_from_json
from mailshot.core.access.auth import Principal
from mailshot.core.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from mailshot.core.web.types import Count, Id
from mailshot.esp import scopes
from mailshot.esp.api.deps import ChunkSessionsDep, SessionDep, scoped
from mailshot.esp.schemas.audience import RecipientPublic
from mailshot.esp.services import audience, finalize
from mailshot.esp.services import campaigns as service

router = APIRouter(tags=["campaigns"])
Reader = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_READ, "read campaigns"))]
Writer = Annotated[Principal, Depends(scoped(scopes.CAMPAIGNS_WRITE, "write campaigns"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

PAUSED: dict[int | str, dict[str, Any]] = {
    503: {"description": "INTEGRATION_PAUSED: retry after the Retry-After header."}
}
STALE: dict[int | str, dict[str, Any]] = {
    409: {"description": "STALE_SNAPSHOT: a newer snapshot has replaced this one."}
}


@router.put(
    "/integrated-campaigns/{crm_mailshot_id}",
    responses={
        422: {"description": "CAMPAIGN_NAME_TOO_LONG and the other campaign checks."},
        **STALE,
        **PAUSED,
    },
)
def put_integrated_campaign(
    session: SessionDep, _: Writer, crm_mailshot_id: Id, body: IntegratedCampaignPut
) -> CampaignPublic:
    """Create or update the campaign of a CRM mailshot for a snapshot (a sync job).

    Checked against ``GET /limits``; an older snapshot than the campaign's current one is
    refused. The campaign is then ``receiving`` that snapshot's audience.
    """
    return CampaignPublic.model_validate(service.upsert_integrated(session, crm_mailshot_id, body))


@router.get("/integrated-campaigns/{crm_mailshot_id}")
def get_integrated_campaign(session: SessionDep, _: Reader, crm_mailshot_id: Id) -> CampaignPublic:
    """The campaign of a CRM mailshot."""
    return CampaignPublic.model_validate(service.get_integrated(session, crm_mailshot_id))


def _write_chunk(
    sessions: sessionmaker[Session], crm_mailshot_id: int, body: bytes
) -> RecipientsWritten:
    """Parse the chunk (orjson and C-speed shape checks, pydantic for anything unusual) and
    write it: runs in the threadpool, never on the event loop."""
    try:
        chunk = recipient_chunk_from_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    return audience.write_recipients(sessions, crm_mailshot_id, chunk)


@router.post(
    "/integrated-campaigns/{crm_mailshot_id}/recipients",
    responses={**STALE, **PAUSED},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RecipientChunk.model_json_schema()}},
        }
    },
)
async def post_recipients(
    request: Request, sessions: ChunkSessionsDep, _: Writer, crm_mailshot_id: Id
) -> RecipientsWritten:
    """Write a chunk of the current snapshot's audience (a ``RecipientChunk``): contacts are
    upserted by normalised address, audience rows by (campaign, contact). Idempotent: the
    same chunk written twice leaves the same audience and gets the same answer."""
    body = await request.body()
    return await run_in_threadpool(_write_chunk, sessions, crm_mailshot_id, body)


@router.post(
    "/integrated-campaigns/{crm_mailshot_id}/finalize",
    responses={
        409: {"description": "STALE_SNAPSHOT, or AUDIENCE_COUNT_MISMATCH (nothing changed)."},
        **PAUSED,
    },
)
def finalize_campaign(
    session: SessionDep, _: Writer, crm_mailshot_id: Id, body: FinalizeRequest
) -> FinalizeResult:
    """Make the snapshot the campaign's audience: rows of older snapshots are dropped,
    ``audience_count + duplicate_count`` must equal ``expected``, and the campaign is
    ``ready``. Idempotent."""
    return finalize.finalize(session, crm_mailshot_id, body)


@router.get("/campaigns")
def list_campaigns(
    session: SessionDep,
    _: Reader,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: Literal["receiving", "ready"] | None = None,
    crm_mailshot_id: Id | None = None,
) -> Page[CampaignSummary]:
    """Campaigns in id order, optionally by status or CRM mailshot."""
    rows, next_cursor = service.list_page(
        session, cursor=cursor, limit=limit, status=status, crm_mailshot_id=crm_mailshot_id
    )
    return Page(
        items=[CampaignSummary.model_validate(r) for r in rows],
        next_cursor=next_cursor,
        limit=limit,
    )


@router.get("/campaigns/{campaign_id}")
def get_campaign(session: SessionDep, _: Reader, campaign_id: Id) -> CampaignPublic:
    return CampaignPublic.model_validate(service.get(session, campaign_id))


@router.get("/campaigns/{campaign_id}/recipients")
def list_campaign_recipients(
    session: SessionDep,
    _: Reader,
    campaign_id: Id,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
    snapshot: Count | None = None,
) -> Page[RecipientPublic]:
    """A campaign's audience in contact id order, with each address's suppressed flag."""
    service.get(session, campaign_id)
    items, next_cursor = audience.list_recipients(
        session, campaign_id, cursor=cursor, limit=limit, snapshot=snapshot
    )
    return Page(items=items, next_cursor=next_cursor, limit=limit)
