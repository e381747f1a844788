"""The ESP's entries in the error catalogue (see :mod:`mailshot.core.errors`).

Every refusal of the ESP API has a stable code, a sentence for people and a fix. Campaign
validation codes are the ones the bridge carries back to the CRM, where a marketer reads
them on the mailshot, so their fixes speak of what to change in the CRM.

:class:`RetryLaterError` is the one ESP-specific exception type: a catalogued error that also
tells the client when to come back (the API adds a ``Retry-After`` header).
"""

from __future__ import annotations

from typing import Any

from mailshot.core.errors import AppError, ErrorSpec, FieldProblem, define

PART = "esp"

# ---- integrated campaigns -----------------------------------------------------------
CAMPAIGN_NAME_MISSING = define(
    "CAMPAIGN_NAME_MISSING",
    422,
    "The campaign has no name.",
    "Give the mailshot a name in the CRM and synchronise again.",
    PART,
)
CAMPAIGN_NAME_TOO_LONG = define(
    "CAMPAIGN_NAME_TOO_LONG",
    422,
    "The campaign name has {length} characters; the ESP accepts at most {max_length}.",
    "Shorten the mailshot's name in the CRM to {max_length} characters or fewer and "
    "synchronise again.",
    PART,
)
CAMPAIGN_SUBJECT_MISSING = define(
    "CAMPAIGN_SUBJECT_MISSING",
    422,
    "The campaign has no subject.",
    "Give the mailshot a subject in the CRM and synchronise again.",
    PART,
)
CAMPAIGN_SENDER_MISSING = define(
    "CAMPAIGN_SENDER_MISSING",
    422,
    "The campaign has no {what}.",
    "Fill in the mailshot's from name and from address in the CRM and synchronise again.",
    PART,
)
CAMPAIGN_CONTENT_MISSING = define(
    "CAMPAIGN_CONTENT_MISSING",
    422,
    "The campaign has no content: neither HTML nor text.",
    "Give the mailshot HTML or text content (or a template) in the CRM and synchronise again.",
    PART,
)
CAMPAIGN_FROM_ADDRESS_INVALID = define(
    "CAMPAIGN_FROM_ADDRESS_INVALID",
    422,
    "The from address '{address}' is not a valid email address: {reason}",
    "Correct the mailshot's from address in the CRM and synchronise again.",
    PART,
)
CAMPAIGN_REPLY_TO_INVALID = define(
    "CAMPAIGN_REPLY_TO_INVALID",
    422,
    "The reply-to address '{address}' is not a valid email address: {reason}",
    "Correct or clear the mailshot's reply-to address in the CRM and synchronise again.",
    PART,
)
CAMPAIGN_FIELD_TOO_LONG = define(
    "CAMPAIGN_FIELD_TOO_LONG",
    422,
    "The campaign's {field} has {length} characters; the ESP accepts at most {max_length}.",
    "Shorten the mailshot's {field} in the CRM to {max_length} characters or fewer and "
    "synchronise again.",
    PART,
)
CAMPAIGN_DATES_INVALID = define(
    "CAMPAIGN_DATES_INVALID",
    422,
    "The campaign ends ({end_date}) before it starts ({start_date}).",
    "Set an end date on or after the start date, or leave one of them blank.",
    PART,
)
CAMPAIGN_OF_ANOTHER_MAILSHOT = define(
    "CAMPAIGN_OF_ANOTHER_MAILSHOT",
    409,
    "The ESP campaign of CRM mailshot {crm_mailshot_id} belongs to the mailshot with uid "
    "{campaign_uid}, not to this one (uid {crm_mailshot_uid}): two CRM mailshots have the "
    "same id, so this one may not take that campaign over.",
    "The CRM database was probably restored or recreated against this ESP: synchronise "
    "from the CRM database that holds the mailshot of ESP campaign {campaign_id}, or "
    "connect this CRM to an ESP of its own. The ESP never gives a campaign to another "
    "mailshot.",
    PART,
)
STALE_SNAPSHOT = define(
    "STALE_SNAPSHOT",
    409,
    "Snapshot {snapshot} of CRM mailshot {crm_mailshot_id} is out of date: the ESP is "
    "receiving snapshot {current_snapshot}.",
    "Nothing to repair: a newer synchronisation of this mailshot has replaced this one.",
    PART,
)
SNAPSHOT_NOT_STARTED = define(
    "SNAPSHOT_NOT_STARTED",
    409,
    "Snapshot {snapshot} of CRM mailshot {crm_mailshot_id} has not been started: the ESP is "
    "receiving snapshot {current_snapshot}.",
    "Send PUT /integrated-campaigns/{crm_mailshot_id} with this snapshot first.",
    PART,
)
AUDIENCE_COUNT_MISMATCH = define(
    "AUDIENCE_COUNT_MISMATCH",
    409,
    "The ESP received {received} recipients for snapshot {snapshot} of CRM mailshot "
    "{crm_mailshot_id} ({audience} in the audience, plus {duplicates} whose address another "
    "recipient already had), "
    "but {expected} were expected.",
    "Send the missing recipient chunks again (writes are idempotent), then finalise again.",
    PART,
)
CAMPAIGN_NOT_FOUND = define(
    "CAMPAIGN_NOT_FOUND",
    404,
    "There is no integrated campaign for CRM mailshot {crm_mailshot_id}.",
    "Send PUT /integrated-campaigns/{crm_mailshot_id} to create it first.",
    PART,
)

# ---- recipient chunks -----------------------------------------------------------------
RECIPIENT_COLUMNS_MISSING = define(
    "RECIPIENT_COLUMNS_MISSING",
    422,
    "The recipient columns lack {missing}.",
    "Send columns naming at least 'person_id' and 'email'.",
    PART,
)
RECIPIENT_COLUMNS_REPEATED = define(
    "RECIPIENT_COLUMNS_REPEATED",
    422,
    "The recipient columns name {repeated} more than once.",
    "Name each column once.",
    PART,
)
RECIPIENT_ROWS_INVALID = define(
    "RECIPIENT_ROWS_INVALID",
    422,
    "{count} recipient rows are not valid; the first is row {first_row}: {first_problem}",
    "Correct the rows listed in details (rows count from 0) and send the chunk again.",
    PART,
)
RECIPIENTS_TOO_MANY_ROWS = define(
    "RECIPIENTS_TOO_MANY_ROWS",
    422,
    "The request has {rows} recipient rows; the ESP accepts at most {max_rows} per request.",
    "Split the recipients into chunks of at most {max_rows} rows.",
    PART,
)

# ---- contacts and suppressions -----------------------------------------------------------
EMAIL_INVALID = define(
    "ESP_EMAIL_INVALID",
    422,
    "'{address}' is not a valid email address: {reason}",
    "Correct the address and send it again.",
    PART,
)
SUPPRESSION_NOT_FOUND = define(
    "SUPPRESSION_NOT_FOUND",
    404,
    "There is no suppression or bounce record for '{email}'.",
    "Check the address; GET /suppressions lists them.",
    PART,
)

# ---- the integration page ------------------------------------------------------------
INTEGRATION_PAUSED = define(
    "INTEGRATION_PAUSED",
    503,
    "The CRM integration is paused on the ESP (since {paused_at}); nothing was changed.",
    "Retry after {retry_after} seconds; an ESP administrator resumes the integration with "
    "POST /integration/resume (Tools > Integration > General).",
    PART,
)

# ---- users and API keys ------------------------------------------------------------------
USER_EMAIL_TAKEN = define(
    "ESP_USER_EMAIL_TAKEN",
    409,
    "There is already an ESP user with the email '{email}'.",
    "Use another address, or give the existing user a key.",
    PART,
)
UNKNOWN_SCOPES = define(
    "ESP_UNKNOWN_SCOPES",
    422,
    "The scopes {unknown} do not exist on the ESP.",
    "Choose scopes among: {known}.",
    PART,
)
KEY_DATES_INVALID = define(
    "ESP_KEY_DATES_INVALID",
    422,
    "The key would expire ({until}) before it becomes valid ({valid_from}).",
    "Set Until after Valid From, or leave one of them blank.",
    PART,
)
USER_SELF_LOCKOUT = define(
    "ESP_USER_SELF_LOCKOUT",
    409,
    "You cannot {action} your own ESP user: your key would stop working.",
    "Ask another administrator to do it, or use another administrator's key.",
    PART,
)


class RetryLaterError(AppError):
    """A catalogued refusal that will pass later: answered with ``Retry-After``."""

    def __init__(
        self,
        spec: ErrorSpec,
        retry_after: int,
        details: list[FieldProblem] | None = None,
        **params: Any,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(spec, details, retry_after=retry_after, **params)
