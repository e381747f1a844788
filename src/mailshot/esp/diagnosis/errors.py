"""The send diagnosis' entries in the error catalogue: every reason a send may not be
moving that no other error names (shown by the campaign's page and ``mailshot doctor``)."""

from __future__ import annotations

from mailshot.core.errors import define

PART = "esp"

SEND_PAUSED = define(
    "SEND_PAUSED",
    409,
    "The send is paused (since {since}): nothing more goes out; {left} recipients wait.",
    "Press Resume on the campaign's page (or POST /esp/api/v1/sends/{send_id}/resume).",
    part=PART,
)
SEND_SCHEDULED = define(
    "SEND_SCHEDULED",
    409,
    "The send is scheduled for {at} (in {wait}): nothing goes out before then.",
    "Nothing to do: it starts by itself then, if a send worker is running. To stop it, "
    "pause or cancel it on the campaign's page.",
    part=PART,
)
SEND_ALL_DEFERRED = define(
    "SEND_ALL_DEFERRED",
    409,
    "All {count} remaining recipients are deferred (the relay answered 4xx: try later); the "
    "next attempt is at {next_at}; the last reply was “{reply}”.",
    "Nothing to do at once: they are retried by themselves with back-off and fail after "
    "{give_up}. If the reply names a limit or a block, ask the relay's operator about it.",
    part=PART,
)
SEND_NO_WORKER = define(
    "SEND_NO_WORKER",
    503,
    "No send worker is running: work of this send has waited since {since} and nobody took "
    "it ({seen}).",
    "Start one: `mailshot send-worker` (or `mailshot serve`, which runs MAILSHOT_SEND_WORKERS "
    "of them).",
    part=PART,
)
SEND_RATE_LIMITED = define(
    "SEND_RATE_LIMITED",
    409,
    "The relays allow {rate} messages per second together: the {left} recipients left take "
    "about {takes} at that rate.",
    "Raise messages_per_second in MAILSHOT_SMTP_RELAYS if your relay allows more; otherwise "
    "nothing is wrong, the send is just paced.",
    part=PART,
)
SEND_IN_DOUBT = define(
    "SEND_IN_DOUBT",
    409,
    "{count} recipients are in doubt: their message went out and no reply came back, so "
    "they may or may not have it.",
    "Look at them in the in-doubt list; press “Resend in-doubt recipients” to send to them "
    "again (some may then get the message twice).",
    part=PART,
)
SEND_RELAY_UNREACHABLE = define(
    "SEND_RELAY_UNREACHABLE",
    503,
    "The relay {relay} at {host}:{port} cannot be reached ({reason}).",
    "Check host, port and security of this relay in MAILSHOT_SMTP_RELAYS and that it runs "
    "and lets this machine in; with no relay configured, `mailshot serve` runs the Outbox "
    "on {host}:{port}. Sending retries by itself once it answers.",
    part=PART,
)
SEND_RELAY_AUTH_REFUSED = define(
    "SEND_RELAY_AUTH_REFUSED",
    503,
    "The relay {relay} at {host}:{port} refused our login as {username} ({reply}).",
    "Correct username and password of this relay in MAILSHOT_SMTP_RELAYS (an app password "
    "or API key, for most providers), then restart the send workers.",
    part=PART,
)
SEND_RELAY_REFUSED = define(
    "SEND_RELAY_REFUSED",
    503,
    "The relay {relay} at {host}:{port} answers but refused the connection ({reply}).",
    "Read the reply: it may need TLS (security = starttls or tls), or refuse this machine's "
    "address; fix the relay's settings in MAILSHOT_SMTP_RELAYS.",
    part=PART,
)
