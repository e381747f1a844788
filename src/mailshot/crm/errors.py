"""The CRM's entries in the error catalogue (see :mod:`mailshot.errors`).

Field-level refusals that only a service can decide (a rule across several fields, a row
that must exist) are raised as ``VALIDATION_FAILED`` with one detail per field, through
:func:`field_error`, so every validation error has the same shape. The codes below are the
refusals that are not about one field of one request. The sync queue keeps its own codes
in ``mailshot.crm.sync.errors``.
"""

from __future__ import annotations

from mailshot.errors import AppError, FieldProblem, define, validation_error

PART = "crm"


def field_error(field: str, rule: str, message: str, **params: object) -> AppError:
    """A ``VALIDATION_FAILED`` error about one field, decided by a service."""
    clean = {k: v for k, v in params.items() if isinstance(v, str | int | float)}
    return validation_error([FieldProblem(field=field, rule=rule, message=message, params=clean)])


MAILING_LIST_DYNAMIC_UNSUPPORTED = define(
    "MAILING_LIST_DYNAMIC_UNSUPPORTED",
    422,
    "Dynamic mailing lists are not supported yet; only static lists (explicit members) are.",
    "Create the list with kind 'static' and add its members with POST .../members.",
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
