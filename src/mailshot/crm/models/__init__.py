"""CRM storage: SQLAlchemy tables. API schemas live in :mod:`mailshot.crm.schemas`."""

from mailshot.crm.models.access import (
    ApiKey,
    AuditEntry,
    KeyRefusalRecord,
    LoginFailure,
    User,
    WebSession,
)
from mailshot.crm.models.base import Base
from mailshot.crm.models.imports import ImportRejection, ImportRun
from mailshot.crm.models.marketing import (
    CampaignMember,
    MailingList,
    MailingListMember,
    Mailshot,
    MarketingCampaign,
    Template,
)
from mailshot.crm.models.people import ComplianceRecord, CrmSetting, Organisation, Person
from mailshot.crm.models.sends import MailshotSend
from mailshot.crm.models.sync import (
    IntegrationStatus,
    SyncExclusion,
    SyncJob,
    SyncRecipient,
    SyncUnit,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "CampaignMember",
    "ComplianceRecord",
    "CrmSetting",
    "ImportRejection",
    "ImportRun",
    "IntegrationStatus",
    "KeyRefusalRecord",
    "LoginFailure",
    "MailingList",
    "MailingListMember",
    "Mailshot",
    "MailshotSend",
    "MarketingCampaign",
    "Organisation",
    "Person",
    "SyncExclusion",
    "SyncJob",
    "SyncRecipient",
    "SyncUnit",
    "Template",
    "User",
    "WebSession",
]
