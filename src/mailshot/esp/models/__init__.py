"""ESP storage: SQLAlchemy tables. API schemas live in :mod:`mailshot.esp.schemas`."""

from mailshot.esp.models.access import (
    EspApiKey,
    EspKeyRefusal,
    EspLoginFailure,
    EspUser,
    EspWebSession,
)
from mailshot.esp.models.base import Base
from mailshot.esp.models.campaigns import (
    Campaign,
    CampaignDuplicate,
    CampaignRecipient,
    Contact,
    Suppression,
)
from mailshot.esp.models.integration import IntegrationState, IntegrationWorker
from mailshot.esp.models.outbox import OutboxMessage, OutboxSource, OutboxTotals
from mailshot.esp.models.ratelimits import SendRateLimit
from mailshot.esp.models.sends import Send, SendLeaseLog, SendLink, SendRecipient, SendUnit

__all__ = [
    "Base",
    "Campaign",
    "CampaignDuplicate",
    "CampaignRecipient",
    "Contact",
    "EspApiKey",
    "EspKeyRefusal",
    "EspLoginFailure",
    "EspUser",
    "EspWebSession",
    "IntegrationState",
    "IntegrationWorker",
    "OutboxMessage",
    "OutboxSource",
    "OutboxTotals",
    "Send",
    "SendLeaseLog",
    "SendLink",
    "SendRateLimit",
    "SendRecipient",
    "SendUnit",
    "Suppression",
]
