"""The CRM's entries in the error catalogue (see :mod:`mailshot.core.errors`).

Field-level refusals that only a service can decide (a rule across several fields, a row
that must exist) are raised as ``VALIDATION_FAILED`` with one detail per field, through
:func:`field_error`, so every validation error has the same shape. The codes below are the
refusals that are not about one field of one request. The sync queue keeps its own codes
in ``mailshot.crm.sync.errors``.
"""

from __future__ import annotations

from mailshot.core.errors import AppError, FieldProblem, define, validation_error

PART = "crm"


def field_error(field: str, rule: str, message: str, **params: object) -> AppError:
    """A ``VALIDATION_FAILED`` error about one field, decided by a service."""
    clean = {k: v for k, v in params.items() if isinstance(v, str | int | float)}
    return validation_error([FieldProblem(field=field, rule=rule, message=message, params=clean)])


MAILING_LIST_DYNAMIC_MEMBERS = define(
    "MAILING_LIST_DYNAMIC_MEMBERS",
    409,
    "The mailing list '{name}' is dynamic: its members are the people its filter selects, "
    "computed when a sync starts, so they cannot be added, changed or removed one by one.",
    "Change the list's filter (PATCH /mailing-lists/{list_id} with filter), or use a static "
    "list to choose members by hand.",
    part=PART,
)
MAILING_LIST_HAS_MEMBERS = define(
    "MAILING_LIST_HAS_MEMBERS",
    409,
    "The mailing list '{name}' has {count} members of its own, which a dynamic list would ignore.",
    "Create a new dynamic list instead, or remove the members first.",
    part=PART,
)
UNKNOWN_PEOPLE = define(
    "UNKNOWN_PEOPLE",
    422,
    "{count} of the person ids sent are not people in this CRM (for example {sample}); "
    "nothing was changed.",
    "Send only ids of existing people (GET /people), or create the missing people first.",
    part=PART,
)
CAMPAIGN_STATUSES_IN_USE = define(
    "CAMPAIGN_STATUSES_IN_USE",
    409,
    "The campaign still has members with the status(es) {statuses}, which the new list of "
    "member statuses leaves out.",
    "Keep those statuses in member_statuses, or move or remove those members first.",
    part=PART,
)
AUDIENCE_SOURCE_MISSING = define(
    "AUDIENCE_SOURCE_MISSING",
    422,
    "The mailshot '{name}' has no audience: it names no {source_label}.",
    "Choose a {source_label} for the mailshot (PATCH /mailshots/{mailshot_id} with "
    "{id_field}); if it had one, that {source_label} has been deleted.",
    part=PART,
)
AUDIENCE_SOURCE_NOT_FOUND = define(
    "AUDIENCE_SOURCE_NOT_FOUND",
    422,
    "The {source_label} {source_id} of the mailshot '{name}' no longer exists.",
    "Choose another {source_label} for the mailshot (PATCH /mailshots/{mailshot_id} with "
    "{id_field}).",
    part=PART,
)
USER_EMAIL_TAKEN = define(
    "USER_EMAIL_TAKEN",
    409,
    "There is already a user with the email address {email}.",
    "Use another address, or change the existing user instead.",
    part=PART,
)
USER_SELF_LOCKOUT = define(
    "USER_SELF_LOCKOUT",
    409,
    "You cannot {action} your own user: you would lock yourself out of administration.",
    "Ask another administrator to do it, or make another user an administrator first.",
    part=PART,
)
IMPORT_FILE_UNREADABLE = define(
    "IMPORT_FILE_UNREADABLE",
    422,
    "The file {file_name} cannot be imported: {reason}.",
    "Save it as a CSV file in UTF-8 whose first line names the columns "
    "(for example email,first_name,last_name), then import it again.",
    part=PART,
)
IMPORT_RESUME_FILE_CHANGED = define(
    "IMPORT_RESUME_FILE_CHANGED",
    409,
    "Import {run_id} read a file whose SHA-256 is {expected}, and this file's is {actual}: "
    "it is not the same file, so the import cannot resume from its checkpoint.",
    "Resume with the very file the import started with, or start a new import of this "
    "file (a new run changes only what differs).",
    part=PART,
)
IMPORT_ALREADY_COMPLETED = define(
    "IMPORT_ALREADY_COMPLETED",
    409,
    "Import {run_id} of {file_name} has completed; there is nothing to resume.",
    "Start a new import to apply the file again (it changes only what differs).",
    part=PART,
)
IMPORT_NOTHING_TO_RESUME = define(
    "IMPORT_NOTHING_TO_RESUME",
    404,
    "No interrupted import of {file_name} was found (no unfinished run read a file with the "
    "same content).",
    "Import the file without --resume.",
    part=PART,
)
MAILSHOT_SEND_NOT_REPORTED = define(
    "MAILSHOT_SEND_NOT_REPORTED",
    404,
    "The ESP has not reported a send of mailshot {mailshot_id}.",
    "Send its campaign in the ESP (its campaign page, or `mailshot send`); the bridge relays "
    "the send's state and counts within seconds. If it was sent, check that a bridge worker "
    "runs (GET /integration).",
    part=PART,
)
