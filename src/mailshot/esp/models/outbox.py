"""The Outbox: every message the embedded SMTP capture server received (its envelope and
the headers a list shows), its raw source in a table of its own (so lists and searches
never read the sources), and the running totals that retention works from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailshot.core.db.engine import IdType
from mailshot.esp.models.base import Base, IdMixin

#: The longest header value (or envelope address) kept in a list column, in characters.
HEADER_MAX = 1000


class OutboxMessage(IdMixin, Base):
    """One message as received: the envelope, the decoded headers lists show, its size."""

    __tablename__ = "outbox_messages"

    received_at: Mapped[datetime] = mapped_column()
    mail_from: Mapped[str] = mapped_column(Text, default="")
    #: The envelope recipients, one per line.
    recipients: Mapped[str] = mapped_column(Text, default="")
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(Text, default="")
    from_header: Mapped[str] = mapped_column(Text, default="")
    to_header: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer)


class OutboxSource(Base):
    """The raw message (bytes as received, dot-stuffing undone) of an Outbox message."""

    __tablename__ = "outbox_sources"

    message_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("outbox_messages.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxTotals(Base):
    """A single row (id 1): the messages and bytes kept, and how many retention deleted."""

    __tablename__ = "outbox_totals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted: Mapped[int] = mapped_column(BigInteger, default=0)
