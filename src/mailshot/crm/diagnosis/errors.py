"""The diagnosis' entries in the error catalogue (see :mod:`mailshot.core.errors`): every reason
a mailshot may not be moving that no other error already names. A check that finds a
catalogued error (a refused key, the ESP's refusal of a campaign) reports that error's own
code instead."""

from __future__ import annotations

from mailshot.core.errors import define

PART = "crm"

INTEGRATION_KEY_MISSING = define(
    "INTEGRATION_KEY_MISSING",
    409,
    "The CRM has no API key for the integration: no user with the role 'integration' has one.",
    "Create a key for the integration user (`mailshot keys create`, or POST /api-keys) and "
    "give it to the bridge as MAILSHOT_BRIDGE_CRM_KEY.",
    part=PART,
)
INTEGRATION_KEY_EXPIRING = define(
    "INTEGRATION_KEY_EXPIRING",
    409,
    "The integration key '{key_name}' ({prefix}) expires at {until}, in {days} days.",
    "Rotate it (`mailshot keys rotate`, or POST /api-keys/{key_id}/rotate) and give the bridge "
    "the new key before then.",
    part=PART,
)
INTEGRATION_KEY_REFUSED = define(
    "INTEGRATION_KEY_REFUSED",
    409,
    "The bridge was refused at {at} with the key {prefix} ({reason}), and has not been heard "
    "from since.",
    "Give the bridge a key the CRM accepts (MAILSHOT_BRIDGE_CRM_KEY): see GET /key-refusals "
    "for every refused try.",
    part=PART,
)
INTEGRATION_NOT_RUNNING = define(
    "INTEGRATION_NOT_RUNNING",
    503,
    "No bridge worker is running: {when}. Queued syncs wait until one starts.",
    "Start the bridge (`mailshot worker`, or `mailshot serve` without --no-worker); if it is "
    "running, read its log: it says when the CRM refuses its key or cannot be reached.",
    part=PART,
)
INTEGRATION_PAUSED_AT_ESP = define(
    "INTEGRATION_PAUSED_AT_ESP",
    503,
    "The ESP's integration is paused (since {since}): queued syncs wait, and nothing is lost.",
    "An ESP administrator resumes it (Tools > Integration, or POST /esp/api/v1/integration/"
    "resume); the waiting syncs then carry on by themselves.",
    part=PART,
)
ESP_UNREACHABLE = define(
    "ESP_UNREACHABLE",
    503,
    "The bridge could not reach the ESP at its last try ({at}): {error}",
    "Start the ESP, or correct the bridge's MAILSHOT_ESP_URL; the syncs are retried by "
    "themselves once it answers.",
    part=PART,
)
ESP_REFUSES_BRIDGE_KEY = define(
    "ESP_REFUSES_BRIDGE_KEY",
    503,
    "The ESP refuses the bridge's API key: {error}",
    "An ESP administrator enables or renews the key under the ESP's API keys, or gives the "
    "bridge a new one (MAILSHOT_BRIDGE_ESP_KEY).",
    part=PART,
)
ESP_LIMITS_UNKNOWN = define(
    "ESP_LIMITS_UNKNOWN",
    409,
    "The CRM has not received the ESP's limits yet, so names and field lengths are only "
    "checked by the ESP when a sync runs.",
    "Start the bridge: it reads the limits from the ESP when it starts and every few minutes.",
    part=PART,
)
MAILSHOT_NOT_SYNCHRONISED = define(
    "MAILSHOT_NOT_SYNCHRONISED",
    409,
    "The mailshot '{name}' is {state}: it is not on its way to the ESP.",
    "Press Synchronise (POST /mailshots/{mailshot_id}/synchronise, or `mailshot sync`).",
    part=PART,
)
SYNC_RETRY_PENDING = define(
    "SYNC_RETRY_PENDING",
    503,
    "The last try failed ({error_code}: {error_message}); the next one is at {at}.",
    "Nothing to do if it is temporary: it is retried by itself. If it keeps failing, the "
    "other checks say why.",
    part=PART,
)
SYNC_FAILED_RECENTLY = define(
    "SYNC_FAILED_RECENTLY",
    409,
    "{count} syncs failed in the last 24 hours; the latest, of the mailshot '{name}', with "
    "{error_code}: {error_message}",
    "Run the diagnosis of that mailshot (`mailshot doctor {mailshot_id}`), correct what it "
    "names, and press Retry.",
    part=PART,
)
