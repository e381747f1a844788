"""The sync queue's entries in the error catalogue (see :mod:`mailshot.core.errors`).

Two kinds live here: refusals of a request (Synchronise of a mailshot that cannot be
synchronised, a worker whose lease was lost), and the reasons a sync job can fail that the
CRM itself decides (an empty audience, retries exhausted, a chunk that keeps killing
workers). Failures decided by the ESP keep the ESP's own code, message and fix.
"""

from __future__ import annotations

from mailshot.core.errors import define

PART = "crm"

SYNC_TARGET_MISSING = define(
    "SYNC_TARGET_MISSING",
    422,
    "The mailshot '{name}' is not set to synchronise with an ESP.",
    "Set its sync target (sync_with: 'esp') and press Synchronise again.",
    part=PART,
)
SYNC_PREFLIGHT_FAILED = define(
    "SYNC_PREFLIGHT_FAILED",
    422,
    "The mailshot '{name}' cannot be synchronised. {summary}",
    "Correct the fields listed and press Synchronise again; nothing was queued.",
    part=PART,
)
SYNC_LEASE_LOST = define(
    "SYNC_LEASE_LOST",
    409,
    "This worker no longer holds unit {unit_id}: its lease expired and another worker took "
    "it over, or the token is not the one this unit was leased with.",
    "Drop the unit without reporting anything; the worker that holds it now will finish it.",
    part=PART,
)
SYNC_JOB_ENDED = define(
    "SYNC_JOB_ENDED",
    409,
    "The sync job {job_id} has ended ({state}); its remaining work is no longer wanted.",
    "Drop the unit and lease another.",
    part=PART,
)
SYNC_WRONG_UNIT_KIND = define(
    "SYNC_WRONG_UNIT_KIND",
    422,
    "Unit {unit_id} is a {kind} unit; this call is only for {expected} units.",
    "Call the endpoint that matches the unit's kind.",
    part=PART,
)
SYNC_NO_SNAPSHOT = define(
    "SYNC_NO_SNAPSHOT",
    409,
    "The sync job {job_id} has no audience snapshot yet.",
    "Prepare the job first (its prepare unit), then read its recipients.",
    part=PART,
)
SYNC_NOT_ACTIVE = define(
    "SYNC_NOT_ACTIVE",
    409,
    "The mailshot '{name}' has no sync queued or running (its sync state is {state}).",
    "Nothing to cancel; press Synchronise to start a sync.",
    part=PART,
)
SYNC_NOT_RETRYABLE = define(
    "SYNC_NOT_RETRYABLE",
    409,
    "The sync of the mailshot '{name}' is {state}; only a failed or cancelled sync can be retried.",
    "Wait for the sync to end, or cancel it first; after a change, press Synchronise.",
    part=PART,
)
SYNC_AUDIENCE_EMPTY = define(
    "SYNC_AUDIENCE_EMPTY",
    422,
    "The audience of the mailshot '{name}' is empty: {excluded} people of its source were "
    "left out ({reasons}) and nobody is left to synchronise.",
    "See who was left out and why (GET /sync/jobs/{job_id}/exclusions), change the list or "
    "the people, and press Synchronise again.",
    part=PART,
)
SYNC_RETRIES_EXHAUSTED = define(
    "SYNC_RETRIES_EXHAUSTED",
    502,
    "The sync gave up after {attempts} attempts of its {step} step; the last error was "
    "{last_code}: {last_message}",
    "Check that the ESP is reachable and its integration is running, then press Retry.",
    part=PART,
)
SYNC_UNIT_KILLS_WORKERS = define(
    "SYNC_UNIT_KILLS_WORKERS",
    502,
    "The {step} step of the sync stopped {takeovers} workers before any could finish it "
    "(each one's lease expired while it held the step).",
    "Check the bridge workers' logs and memory around this step, then press Retry; a "
    "smaller chunk size (MAILSHOT_CHUNK_SIZE) may help.",
    part=PART,
)
SYNC_WORKER_ERROR = define(
    "SYNC_WORKER_ERROR",
    502,
    "The bridge worker reported an error it could not classify: {message}",
    "Check the bridge workers' logs; the step is retried automatically.",
    part=PART,
)
