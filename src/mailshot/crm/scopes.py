"""What a CRM API key may do. A key holds a subset of these; ``admin`` implies all."""

from __future__ import annotations

MARKETING_READ = "marketing:read"
MARKETING_WRITE = "marketing:write"
SYNC_REQUEST = "sync:request"
#: Lease sync work, read audience snapshots and report progress: the bridge's scope.
SYNC_WORK = "sync:work"
ADMIN = "admin"

ALL_SCOPES = (MARKETING_READ, MARKETING_WRITE, SYNC_REQUEST, SYNC_WORK, ADMIN)
ROLE_SCOPES = {
    "admin": [ADMIN, MARKETING_READ, MARKETING_WRITE, SYNC_REQUEST],
    "marketer": [MARKETING_READ, MARKETING_WRITE, SYNC_REQUEST],
    "integration": [MARKETING_READ, SYNC_WORK],
}
