"""Routes of mailshots' sends in the ESP: the bridge relays the ESP's feed of changed sends
(``PUT /integration/send-status``, scope ``sync:work``) and reads back the cursor it is
stored at (``GET``); people read a mailshot's send (``GET /mailshots/{id}/send``).
Parse, authorise, call :mod:`mailshot.crm.services.mailshot_sends`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mailshot.contracts.sends import SendFeedCursor, SendStatusAnswer, SendStatusBatch
from mailshot.core.access.auth import Principal
from mailshot.core.errors import AppError
from mailshot.core.web.types import Id
from mailshot.crm import errors, scopes
from mailshot.crm.api.deps import SessionDep, scoped
from mailshot.crm.schemas.mailshot_sends import MailshotSendPublic
from mailshot.crm.services import mailshot_sends as service
from mailshot.crm.services import mailshots

router = APIRouter(tags=["sends"])
Reader = Annotated[Principal, Depends(scoped(scopes.MARKETING_READ, "read marketing data"))]
Worker = Annotated[Principal, Depends(scoped(scopes.SYNC_WORK, "report the ESP's sends"))]


@router.put("/integration/send-status", summary="The bridge relays sends changed in the ESP")
def put_send_status(session: SessionDep, who: Worker, body: SendStatusBatch) -> SendStatusAnswer:
    """Store each report on its mailshot unless the one stored is as new (same send, same
    or higher version; or a later send), and the feed cursor after the batch."""
    return service.apply(session, body, reported_by=who.actor)


@router.get("/integration/send-status", summary="Where the relay of the ESP's sends stands")
def get_send_status(session: SessionDep, _: Worker) -> SendFeedCursor:
    """The ESP feed cursor the last stored batch ended at: the bridge resumes from it."""
    return SendFeedCursor(cursor=service.cursor(session))


@router.get("/mailshots/{mailshot_id}/send", summary="The mailshot's send in the ESP")
def get_mailshot_send(session: SessionDep, _: Reader, mailshot_id: Id) -> MailshotSendPublic:
    """The send's state and counts per recipient state, as the ESP last reported them."""
    mailshots.get(session, mailshot_id)
    row = service.of_mailshot(session, mailshot_id)
    if row is None:
        raise AppError(errors.MAILSHOT_SEND_NOT_REPORTED, mailshot_id=mailshot_id)
    return MailshotSendPublic.of(row)
