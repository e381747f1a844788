"""What a CRM API key may do. A key holds a subset of these; ``admin`` implies all.

A key may hold only what its access-as user's role allows (``ROLE_SCOPES``; a role with
``admin`` allows every scope), and uses only that, whatever its user's role was when the
key was made (:func:`mailshot.core.access.tokens.role_allows`)."""

from __future__ import annotations

MARKETING_READ = "marketing:read"
MARKETING_WRITE = "marketing:write"
SYNC_REQUEST = "sync:request"
#: Lease sync work, read audience snapshots and report progress: the bridge's scope.
SYNC_WORK = "sync:work"
#: Read ``/metrics`` (Prometheus): a monitoring system's scope.
METRICS = "metrics"
ADMIN = "admin"

ALL_SCOPES = (MARKETING_READ, MARKETING_WRITE, SYNC_REQUEST, SYNC_WORK, METRICS, ADMIN)
ROLE_SCOPES = {
    "admin": [ADMIN, MARKETING_READ, MARKETING_WRITE, SYNC_REQUEST],
    "marketer": [MARKETING_READ, MARKETING_WRITE, SYNC_REQUEST],
    "integration": [MARKETING_READ, SYNC_WORK],
}
