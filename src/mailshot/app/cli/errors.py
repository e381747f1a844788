"""The command line's entries in the error catalogue (see :mod:`mailshot.core.errors`).

Errors the CRM's API answers are shown as they come (code, message, fix); these are the ones
the command line itself finds before or around a request.
"""

from __future__ import annotations

from mailshot.core.errors import define

PART = "cli"

SETTINGS_INVALID = define(
    "SETTINGS_INVALID",
    422,
    "The settings are not valid: {summary}",
    "Correct the MAILSHOT_* environment variable or the config file entry named above.",
    part=PART,
)
DATABASE_UNREACHABLE = define(
    "DATABASE_UNREACHABLE",
    503,
    "Cannot open the {part} database at {url}: {reason}",
    "Check MAILSHOT_{part}_DATABASE_URL and that its database server is running and the "
    "database exists.",
    part=PART,
)
CLI_NO_API_KEY = define(
    "CLI_NO_API_KEY",
    401,
    "The command line has no CRM API key.",
    "Run `mailshot serve` once (it saves a key in {path}), or set MAILSHOT_API_KEY.",
    part=PART,
)
CLI_CRM_UNREACHABLE = define(
    "CLI_CRM_UNREACHABLE",
    503,
    "Cannot reach the CRM at {url} ({reason}).",
    "Start it with `mailshot serve`, or point MAILSHOT_CRM_URL (or --crm-url) at it.",
    part=PART,
)
CLI_BAD_RESPONSE = define(
    "CLI_BAD_RESPONSE",
    502,
    "The CRM answered {status} with something this command cannot read: {body}",
    "Check that MAILSHOT_CRM_URL points at a mailshot CRM of the same version as this CLI.",
    part=PART,
)
CLI_MAILSHOT_NOT_FOUND = define(
    "CLI_MAILSHOT_NOT_FOUND",
    404,
    "There is no mailshot named or numbered '{ref}'.",
    "Give the mailshot's id, or its exact name (case and spaces included).",
    part=PART,
)
CLI_MAILSHOT_AMBIGUOUS = define(
    "CLI_MAILSHOT_AMBIGUOUS",
    409,
    "{count} mailshots are named '{ref}' (ids {ids}).",
    "Give the id of the one you mean instead of the name.",
    part=PART,
)
CLI_SYNC_TIMEOUT = define(
    "CLI_SYNC_TIMEOUT",
    504,
    "The sync of '{name}' is still {state} after {seconds} s.",
    "It carries on in the background: follow it with `mailshot queue`, or wait longer "
    "with --timeout.",
    part=PART,
)
BRIDGE_NOT_CONFIGURED = define(
    "BRIDGE_NOT_CONFIGURED",
    422,
    "The bridge cannot start: {reason}",
    "Run `mailshot serve` once on this data folder (it provisions the keys), or set "
    "MAILSHOT_BRIDGE_CRM_KEY and MAILSHOT_BRIDGE_ESP_KEY.",
    part=PART,
)
SERVER_CANNOT_LISTEN = define(
    "SERVER_CANNOT_LISTEN",
    503,
    "The server could not listen on {host}:{port}.",
    "Another program may be using that port: stop it, or choose another with --port "
    "(or MAILSHOT_PORT).",
    part=PART,
)
CLI_NO_ESP_KEY = define(
    "CLI_NO_ESP_KEY",
    401,
    "The command line has no ESP API key.",
    "Run `mailshot serve` once (it saves a key in {path}), or set MAILSHOT_ESP_API_KEY to "
    "an ESP key with the scope sends:write.",
    part=PART,
)
CLI_SEND_ESP_UNREACHABLE = define(
    "CLI_SEND_ESP_UNREACHABLE",
    503,
    "Cannot reach the ESP at {url} ({reason}).",
    "Start it with `mailshot serve`, or point MAILSHOT_ESP_URL (or --esp-url) at it.",
    part=PART,
)
CLI_CAMPAIGN_NOT_FOUND = define(
    "CLI_CAMPAIGN_NOT_FOUND",
    404,
    "There is no ESP campaign named or numbered '{ref}'.",
    "Give the CRM mailshot's id, or the campaign's exact name (`mailshot sync` it first).",
    part=PART,
)
CLI_SEND_TIMEOUT = define(
    "CLI_SEND_TIMEOUT",
    504,
    "Send {send_id} is still {state} after {seconds} s.",
    "It carries on in the background: run `mailshot send` again with --wait to follow it.",
    part=PART,
)
OUTBOX_CANNOT_LISTEN = define(
    "OUTBOX_CANNOT_LISTEN",
    503,
    "The Outbox's SMTP server could not listen on {address}: {reason}",
    "Another program may be using that port: stop it, or choose another with "
    "MAILSHOT_OUTBOX_SMTP_PORT (0 picks a free one); or configure an SMTP relay.",
    part=PART,
)
