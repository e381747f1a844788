"""Test data written straight into the CRM database with SQLAlchemy Core (bulk inserts),
for audiences too large to build through the API, and reads of the ESP's audience."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, String, cast, insert, literal, literal_column, select

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import UTCDateTime, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import MailingList, MailingListMember, Mailshot, Person
from mailshot.esp.models import Campaign, CampaignRecipient, Contact


def crm_engine(settings: Settings) -> Engine:
    return make_unpooled_engine(settings.crm_db_url())


def esp_engine(settings: Settings) -> Engine:
    return make_unpooled_engine(settings.esp_db_url())


def email(tag: str, i: int) -> str:
    return f"{tag}.{i}@example.com"


def add_list(engine: Engine, tag: str, n: int, *, excluded: int = 0) -> tuple[int, set[str]]:
    """A static list of ``n`` new people (emails ``<tag>.<i>@example.com``), of whom the last
    ``excluded`` have opted out; return the list id and the emails that should arrive.
    Written with two INSERT ... SELECT statements over a generated series, so 200,000
    people take a second or two."""
    now = utcnow()
    people = Person.__table__
    members = MailingListMember.__table__
    series = select(literal_column("0").label("i")).cte("series", recursive=True)
    series = series.union_all(select(series.c.i + 1).where(series.c.i < n - 1))
    stamp = literal(now, UTCDateTime())
    address = literal(f"{tag}.") + cast(series.c.i, String) + literal("@example.com")
    with engine.begin() as conn:
        list_id = conn.execute(
            insert(MailingList.__table__)
            .values(name=f"list {tag}", kind="static", created_at=now, updated_at=now)
            .returning(MailingList.__table__.c.id)
        ).scalar_one()
        if n > 0:
            conn.execute(
                insert(people).from_select(
                    [
                        "first_name",
                        "last_name",
                        "email",
                        "email_normalised",
                        "email_status",
                        "no_email",
                        "created_at",
                        "updated_at",
                    ],
                    select(
                        literal("First") + cast(series.c.i, String),
                        literal(tag),
                        address,
                        address,
                        literal("ok"),
                        series.c.i >= n - excluded,
                        stamp,
                        stamp,
                    ),
                )
            )
            conn.execute(
                insert(members).from_select(
                    ["list_id", "person_id", "subscribed", "created_at", "updated_at"],
                    select(literal(list_id), people.c.id, literal(True), stamp, stamp).where(
                        people.c.last_name == tag
                    ),
                )
            )
    return int(list_id), {email(tag, i) for i in range(n - excluded)}


def esp_audience(settings: Settings, crm_mailshot_id: int) -> list[str]:
    """The emails in the ESP campaign of a CRM mailshot (one per audience row)."""
    engine = esp_engine(settings)
    campaigns = Campaign.__table__
    rows = CampaignRecipient.__table__
    contacts = Contact.__table__
    with engine.connect() as conn:
        out = conn.execute(
            select(contacts.c.email_normalised)
            .select_from(
                rows.join(campaigns, campaigns.c.id == rows.c.campaign_id).join(
                    contacts, contacts.c.id == rows.c.contact_id
                )
            )
            .where(campaigns.c.crm_mailshot_id == crm_mailshot_id)
        ).scalars()
        emails = [str(e) for e in out]
    engine.dispose()
    return emails


def esp_campaign_ids(settings: Settings, crm_mailshot_id: int) -> list[int]:
    engine = esp_engine(settings)
    campaigns = Campaign.__table__
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(campaigns.c.id).where(campaigns.c.crm_mailshot_id == crm_mailshot_id)
            ).scalars()
        )
    engine.dispose()
    return [int(i) for i in ids]


def add_mailshot(engine: Engine, list_id: int, name: str, **fields: Any) -> int:
    now = utcnow()
    values: dict[str, Any] = {
        "name": name,
        "subject": f"Subject of {name[:40]}",
        "from_name": "Marketing",
        "from_address": "news@example.com",
        "html": "<p>Hello {{first_name}}</p>",
        "text": "Hello",
        "audience_source": "mailing_list",
        "mailing_list_id": list_id,
        "campaign_member_statuses": [],
        "mailshot_type": "static",
        "status": "ready",
        "sync_with": "esp",
        "sync_state": "not_synchronised",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(Mailshot.__table__).values(**values).returning(Mailshot.__table__.c.id)
            ).scalar_one()
        )
