"""What the CRM knows of a mailshot's send in the ESP: the last report the bridge relayed
(one row per mailshot), written only by :mod:`mailshot.crm.services.mailshot_sends`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.db.engine import IdType
from mailshot.crm.models.base import Base


class MailshotSend(Base):
    """The mailshot's send as the ESP last reported it. A report replaces the row only when
    it is newer: a later send, or a higher version of the same send."""

    __tablename__ = "mailshot_sends"

    mailshot_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("mailshots.id", ondelete="CASCADE"), primary_key=True
    )
    send_id: Mapped[int] = mapped_column(IdType)
    #: The ESP's version of its send row: grows with every change there.
    version: Mapped[int] = mapped_column(IdType)
    esp_changed_at: Mapped[datetime] = mapped_column()
    esp_campaign_id: Mapped[int] = mapped_column(IdType)
    #: scheduled, sending, paused, sent, cancelled, failed (the ESP's send states).
    state: Mapped[str] = mapped_column(String(20))
    total: Mapped[int] = mapped_column(Integer)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    sending_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    deferred_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_count: Mapped[int] = mapped_column(Integer, default=0)
    in_doubt_count: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_count: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_fix: Mapped[str | None] = mapped_column(Text)
    #: When the CRM stored this report, and which key's user relayed it.
    received_at: Mapped[datetime] = mapped_column()
    reported_by: Mapped[str | None] = mapped_column(String(255))
