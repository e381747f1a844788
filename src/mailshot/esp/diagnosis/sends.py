"""Why a send is not moving, as the ESP's own data says: paused, scheduled for later, every
remaining recipient deferred (next attempt, last reply), no send worker holding or taking
its units (the send queue's leases), the relays' rate limit and how long the rest takes
at it, the send's last error, recipients in doubt. Each finding has a code, a sentence, a
fix and the page (a path under the ESP) that shows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailshot.core.errors import AppError, ErrorSpec
from mailshot.core.settings import Settings
from mailshot.esp.diagnosis import errors
from mailshot.esp.models import Send
from mailshot.esp.sending.config import effective_relays
from mailshot.esp.services.send_states import RecipientState, SendState
from mailshot.esp.services.sends_queue import TABLES, ledger, units
from mailshot.queue import UnitState

S, R = SendState, RecipientState
#: Seconds a due unit may wait unclaimed before no worker is said to be running (workers
#: look for work about every half second).
WORKER_GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  #: pass, warn or fail
    message: str
    fix: str = ""
    code: str | None = None
    page: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def found(check: str, status: str, spec: ErrorSpec, page: str, **params: Any) -> Finding:
    """A finding in the catalogue's words."""
    err = AppError(spec, **params)
    return Finding(check, status, err.message, err.fix, spec.code, page)


def _dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "an unknown time"


def duration(seconds: float) -> str:
    """Seconds in words: "45 s", "12 min", "3 h 20 min"."""
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    m = round(s / 60)
    return f"{m} min" if m < 90 else f"{m // 60} h {m % 60} min"


def total_rate(settings: Settings) -> float:
    """Messages per second the relays allow together; 0 = no limit (a relay without one)."""
    rates = [r.messages_per_second for r in effective_relays(settings)]
    return 0.0 if not rates or any(r == 0 for r in rates) else float(sum(rates))


def diagnose(session: Session, settings: Settings, send: Send, now: datetime) -> list[Finding]:
    page = f"/campaigns/{send.campaign_id}"
    listing = f"{page}/send/recipients"
    state = S(send.state)
    left = send.pending_count + send.sending_count + send.deferred_count
    out: list[Finding] = []
    if state is S.PAUSED:
        out.append(
            found(
                "send_paused",
                "fail",
                errors.SEND_PAUSED,
                page,
                since=_dt(send.paused_at),
                left=f"{left:,}",
                send_id=send.id,
            )
        )
    if state is S.SCHEDULED and send.scheduled_at is not None and send.scheduled_at > now:
        wait = duration((send.scheduled_at - now).total_seconds())
        out.append(
            found(
                "send_scheduled",
                "warn",
                errors.SEND_SCHEDULED,
                page,
                at=_dt(send.scheduled_at),
                wait=wait,
            )
        )
    if state in (S.SENDING, S.SCHEDULED) and left:
        out += _workers(session, send, now, page)
        if send.pending_count + send.sending_count == 0 and send.deferred_count:
            out.append(_deferred(session, settings, send, f"{listing}?state=deferred"))
    if state in (S.SENDING, S.SCHEDULED, S.PAUSED) and left:
        out.append(_rate(settings, left, page))
    if send.last_error_code:
        out.append(
            Finding(
                "send_error",
                "fail" if state is S.FAILED else "warn",
                send.last_error_message or send.last_error_code,
                send.last_error_fix or "",
                send.last_error_code,
                page,
            )
        )
    if send.in_doubt_count:
        out.append(
            found(
                "send_in_doubt",
                "warn",
                errors.SEND_IN_DOUBT,
                f"{listing}?state=in_doubt",
                count=f"{send.in_doubt_count:,}",
            )
        )
    if not out:
        words = {S.SENT: "The send is finished.", S.CANCELLED: "The send was cancelled."}
        out.append(
            Finding("send_state", "pass", words.get(state, "The send is moving."), page=page)
        )
    return out


def _workers(session: Session, send: Send, now: datetime, page: str) -> list[Finding]:
    """Whether a send worker holds a unit of this send, or took any unit lately."""
    holders = session.execute(
        select(func.count(func.distinct(units.c.lease_owner)), func.max(units.c.lease_expires_at))
        .where(units.c.job_id == send.id, units.c.state == UnitState.LEASED)
        .where(units.c.lease_expires_at > now)
    ).one()
    if holders[0]:
        return [
            Finding(
                "send_workers",
                "pass",
                f"{holders[0]} send worker(s) are working on this send.",
                page=page,
            )
        ]
    due = session.scalar(
        select(func.min(func.coalesce(units.c.available_at, send.requested_at))).where(
            units.c.job_id == send.id,
            units.c.state == UnitState.PENDING,
            or_(units.c.available_at.is_(None), units.c.available_at <= now),
        )
    )
    if due is None:
        return []  # nothing to take now (deferred rows wait for their time)
    log = TABLES.lease_log
    last = session.scalar(select(func.max(func.coalesce(log.c.ended_at, log.c.leased_at))))
    quiet_since = max(due, last) if last is not None else due
    if now - quiet_since < timedelta(seconds=WORKER_GRACE_SECONDS):
        return []
    seen = f"the last lease of any send ended {_dt(last)}" if last else "no send was ever leased"
    return [found("send_workers", "fail", errors.SEND_NO_WORKER, page, since=_dt(due), seen=seen)]


def _deferred(session: Session, settings: Settings, send: Send, page: str) -> Finding:
    row = session.execute(
        select(ledger.c.next_attempt_at, ledger.c.reply_code, ledger.c.reply_text)
        .where(ledger.c.send_id == send.id, ledger.c.state == R.DEFERRED)
        .order_by(ledger.c.next_attempt_at)
        .limit(1)
    ).first()
    last = session.execute(
        select(ledger.c.reply_code, ledger.c.reply_text)
        .where(ledger.c.send_id == send.id, ledger.c.state == R.DEFERRED)
        .order_by(ledger.c.changed_at.desc(), ledger.c.id.desc())
        .limit(1)
    ).first()
    reply = f"{last.reply_code or ''} {last.reply_text or ''}".strip() if last else ""
    return found(
        "send_deferred",
        "warn",
        errors.SEND_ALL_DEFERRED,
        page,
        count=f"{send.deferred_count:,}",
        next_at=_dt(row.next_attempt_at if row else None),
        reply=reply or "none",
        give_up=duration(settings.send_give_up_seconds),
    )


def _rate(settings: Settings, left: int, page: str) -> Finding:
    rate = total_rate(settings)
    if rate <= 0:
        return Finding(
            "send_rate_limit", "pass", "No rate limit is configured for the relays.", page=page
        )
    takes = left / rate
    params: dict[str, Any] = {"rate": f"{rate:g}", "left": f"{left:,}", "takes": duration(takes)}
    if takes > 600:
        return found("send_rate_limit", "warn", errors.SEND_RATE_LIMITED, page, **params)
    message = AppError(errors.SEND_RATE_LIMITED, **params).message
    return Finding("send_rate_limit", "pass", message, page=page)
