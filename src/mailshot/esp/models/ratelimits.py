"""The sending rate limit shared by every send worker and process: one row per relay."""

from __future__ import annotations

from sqlalchemy import Double, String
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.esp.models.base import Base


class SendRateLimit(Base):
    """A relay's virtual schedule (GCRA): ``tat`` is the theoretical arrival time, in
    seconds since the Unix epoch on the database's clock, of the next message the relay
    may take; a worker claiming ``n`` messages moves it to ``max(tat, now) + n / rate``.
    ``messages_per_second`` is the rate of the last claim (for diagnosis)."""

    __tablename__ = "send_rate_limits"

    relay: Mapped[str] = mapped_column(String(100), primary_key=True)
    tat: Mapped[float] = mapped_column(Double, default=0.0)
    messages_per_second: Mapped[float] = mapped_column(Double, default=0.0)
