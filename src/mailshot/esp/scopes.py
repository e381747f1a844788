"""What an ESP API key may do. A key holds a subset of these; ``admin`` implies all.

A key may hold only what its access-as user's role allows (``ROLE_SCOPES``; a role with
``admin`` allows every scope), and uses only that, whatever its user's role was when the
key was made (:func:`mailshot.core.access.tokens.role_allows`)."""

from __future__ import annotations

CAMPAIGNS_READ = "campaigns:read"
#: Create and update integrated campaigns, contacts and audiences: the bridge's scope.
CAMPAIGNS_WRITE = "campaigns:write"
#: Read sends, their counts and ledgers.
SENDS_READ = "sends:read"
#: Start, schedule, pause, resume and cancel sends, and test sends.
SENDS_WRITE = "sends:write"
INTEGRATION = "integration"
#: Read ``/metrics`` (Prometheus): a monitoring system's scope.
METRICS = "metrics"
ADMIN = "admin"

ALL_SCOPES = (CAMPAIGNS_READ, CAMPAIGNS_WRITE, SENDS_READ, SENDS_WRITE, INTEGRATION, METRICS, ADMIN)
ROLE_SCOPES = {
    "admin": [ADMIN, CAMPAIGNS_READ, CAMPAIGNS_WRITE, SENDS_READ, SENDS_WRITE, INTEGRATION],
    "marketer": [CAMPAIGNS_READ, SENDS_READ, SENDS_WRITE],
    "integration": [CAMPAIGNS_READ, CAMPAIGNS_WRITE, SENDS_READ, INTEGRATION],
}
