"""The checks before a send starts (and a test send): a finalised audience, someone to
send to, an end date not passed, templates that render (each problem names its field and
line), a DKIM key where one is required, and a message that can be built at all."""

from __future__ import annotations

from datetime import UTC, datetime

from mailshot.core.errors import AppError, FieldProblem
from mailshot.core.settings import Settings
from mailshot.esp import errors
from mailshot.esp.models import Campaign
from mailshot.esp.sending import compose
from mailshot.esp.sending.config import dkim_configured, send_context
from mailshot.esp.sending.dkim import DkimKeyError
from mailshot.esp.sending.merge import TemplateProblem
from mailshot.esp.sending.mime import AddressError
from mailshot.esp.sending.model import MessageContent


def content_of(campaign: Campaign) -> MessageContent:
    return MessageContent(
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_address=campaign.from_address,
        reply_to=campaign.reply_to,
        html=campaign.html,
        text=campaign.text,
        list_name=campaign.name,
    )


def check_audience(campaign: Campaign) -> None:
    if campaign.status != "ready" or campaign.finalised_snapshot is None:
        raise AppError(
            errors.SEND_AUDIENCE_NOT_FINAL, campaign_id=campaign.id, status=campaign.status
        )
    if campaign.audience_count - campaign.suppressed_count <= 0:
        raise AppError(
            errors.SEND_NOTHING_TO_SEND,
            campaign_id=campaign.id,
            audience=campaign.audience_count,
            suppressed=campaign.suppressed_count,
        )


def check_dates(campaign: Campaign, now: datetime, at: datetime | None) -> None:
    end = campaign.end_date
    if end is None:
        return
    when = at or now
    if when.astimezone(UTC).date() > end:
        later = f" (the send was asked for {when.isoformat()})" if at is not None else ""
        raise AppError(
            errors.SEND_CAMPAIGN_ENDED,
            campaign_id=campaign.id,
            end_date=end.isoformat(),
            when=later,
        )


def check_message(content: MessageContent, settings: Settings) -> compose.CompiledMessage:
    """Templates, DKIM and addresses: the message compiled as a send would compile it."""
    problems = compose.check_template(content)
    if problems:
        first = problems[0]
        raise AppError(
            errors.SEND_TEMPLATE_INVALID,
            [FieldProblem(p.field, "template", str(p), {"line": p.line}) for p in problems],
            where=f"{first.field}, line {first.line}" if first.line else first.field,
            field=first.field,
            problem=first.message,
        )
    if settings.dkim_required and not dkim_configured(settings):
        raise AppError(errors.SEND_DKIM_KEY_MISSING)
    try:
        return compose.compile_message(content, send_context(settings, 1))
    except TemplateProblem as exc:
        raise AppError(
            errors.SEND_TEMPLATE_INVALID,
            where=str(exc).split(":", 1)[0],
            field=exc.field,
            problem=exc.message,
        ) from None
    except (DkimKeyError, OSError) as exc:
        raise AppError(errors.SEND_DKIM_KEY_INVALID, reason=str(exc)) from None
    except (AddressError, ValueError) as exc:
        raise AppError(errors.SEND_SENDER_INVALID, reason=str(exc)) from None


def preflight(campaign: Campaign, settings: Settings, now: datetime, at: datetime | None) -> None:
    """Raise the first reason the campaign cannot be sent (at ``at``, or now)."""
    check_audience(campaign)
    check_dates(campaign, now, at)
    check_message(content_of(campaign), settings)
