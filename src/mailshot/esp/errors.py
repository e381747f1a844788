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
RECIPIENT_COLUMNS_UNKNOWN = define(
    "RECIPIENT_COLUMNS_UNKNOWN",
    422,
    "The recipient columns name {unknown}, which the ESP does not know.",
    "Send only the columns {known}; a CRM newer than its ESP needs the ESP upgraded first.",
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

# ---- sends ---------------------------------------------------------------------------
SEND_AUDIENCE_NOT_FINAL = define(
    "SEND_AUDIENCE_NOT_FINAL",
    409,
    "The audience of campaign {campaign_id} is not finalised (it is {status}): a send "
    "starts only from a finalised audience.",
    "Wait for the CRM's synchronisation of the mailshot to complete, then send again.",
    PART,
)
SEND_NOTHING_TO_SEND = define(
    "SEND_NOTHING_TO_SEND",
    422,
    "Campaign {campaign_id} has nobody to send to: {audience} in the audience, "
    "{suppressed} of them suppressed.",
    "Add people to the mailshot's audience in the CRM and synchronise it again.",
    PART,
)
SEND_CAMPAIGN_ENDED = define(
    "SEND_CAMPAIGN_ENDED",
    422,
    "Campaign {campaign_id} ended on {end_date}: it does not send after its end date{when}.",
    "Move the mailshot's end date in the CRM and synchronise again, or send earlier.",
    PART,
)
SEND_TEMPLATE_INVALID = define(
    "SEND_TEMPLATE_INVALID",
    422,
    "The campaign's {where} cannot be rendered: {problem}",
    "Correct the {field} of the mailshot in the CRM (details list every problem) and "
    "synchronise again.",
    PART,
)
SEND_SENDER_INVALID = define(
    "SEND_SENDER_INVALID",
    422,
    "The campaign's message cannot be built: {reason}",
    "Correct the mailshot's sender or reply-to address in the CRM, or the ESP's "
    "MAILSHOT_BOUNCE_DOMAIN / MAILSHOT_PUBLIC_ESP_URL settings.",
    PART,
)
SEND_DKIM_KEY_MISSING = define(
    "SEND_DKIM_KEY_MISSING",
    422,
    "DKIM signing is required (MAILSHOT_DKIM_REQUIRED) but no DKIM key is configured.",
    "Set MAILSHOT_DKIM_DOMAIN, MAILSHOT_DKIM_SELECTOR and MAILSHOT_DKIM_PRIVATE_KEY_FILE "
    "(a PEM file), or set MAILSHOT_DKIM_REQUIRED=false.",
    PART,
)
SEND_DKIM_KEY_INVALID = define(
    "SEND_DKIM_KEY_INVALID",
    422,
    "The DKIM key cannot sign: {reason}",
    "Check MAILSHOT_DKIM_PRIVATE_KEY_FILE (a readable PEM key for MAILSHOT_DKIM_ALGORITHM) "
    "and the selector and domain.",
    PART,
)
SEND_ALREADY_EXISTS = define(
    "SEND_ALREADY_EXISTS",
    409,
    "Campaign {campaign_id} already has send {send_id} ({state}): a campaign is sent once.",
    "Follow that send (GET /sends/{send_id}); to send again, make a new mailshot in the CRM.",
    PART,
)
SEND_NOT_FOUND = define(
    "SEND_NOT_FOUND",
    404,
    "There is no send {what}.",
    "Start one with POST /integrated-campaigns/{{crm_mailshot_id}}/send.",
    PART,
)
SEND_FEED_CURSOR_INVALID = define(
    "SEND_FEED_CURSOR_INVALID",
    422,
    "The cursor '{cursor}' is not one this feed of sends gave.",
    "Ask without changed_after to start from the first send, or with the next_cursor of an "
    "earlier answer.",
    PART,
)
SEND_STATE_FORBIDS = define(
    "SEND_STATE_FORBIDS",
    409,
    "Send {send_id} is {state}: it cannot be {action}.",
    "{fix}",
    PART,
)
SEND_NOTHING_IN_DOUBT = define(
    "SEND_NOTHING_IN_DOUBT",
    409,
    "Send {send_id} has no recipient in doubt: there is nothing to resend.",
    "Nothing to do; GET /sends/{send_id} shows its counts.",
    PART,
)
SEND_TIME_INVALID = define(
    "SEND_TIME_INVALID",
    422,
    "The send time {at} is not usable: {reason}",
    "Give a time with its timezone (2026-01-31T09:00:00Z), or none to send now.",
    PART,
)
SEND_TEST_ADDRESSES = define(
    "SEND_TEST_ADDRESSES",
    422,
    "A test send goes to 1 to {max} addresses; {count} were given.",
    "Name at most {max} addresses.",
    PART,
)
SEND_LEASE_LOST = define(
    "SEND_LEASE_LOST",
    409,
    "The lease of send unit {unit_id} was lost: it expired and another worker took it over.",
    "Nothing to repair: the other worker carries on, and this one's recipients still "
    "sending are in doubt.",
    PART,
)
SEND_ENDED = define(
    "SEND_ENDED",
    409,
    "Send {job_id} has ended ({state}).",
    "Nothing to repair: its work is over.",
    PART,
)
SEND_WRONG_UNIT_KIND = define(
    "SEND_WRONG_UNIT_KIND",
    409,
    "Send unit {unit_id} is a {kind} unit, not a {expected} unit.",
    "Use the unit as its kind says.",
    PART,
)
SEND_UNIT_KILLS_WORKERS = define(
    "SEND_UNIT_KILLS_WORKERS",
    500,
    "The send stopped: its {step} was taken over {takeovers} times (each time the worker "
    "holding it stopped answering).",
    "Look at the send workers' logs for a crash on this batch; its recipients still "
    "'sending' are in doubt, the others cancelled.",
    PART,
)
SEND_RETRIES_EXHAUSTED = define(
    "SEND_RETRIES_EXHAUSTED",
    500,
    "The send's {step} failed {attempts} times; the last error was {last_code}: {last_message}",
    "Fix the cause named in the last error; the recipients left are cancelled.",
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
