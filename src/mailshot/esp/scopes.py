"""What an ESP API key may do. A key holds a subset of these; ``admin`` implies all."""

from __future__ import annotations

CAMPAIGNS_READ = "campaigns:read"
#: Create and update integrated campaigns, contacts and audiences: the bridge's scope.
CAMPAIGNS_WRITE = "campaigns:write"
INTEGRATION = "integration"
ADMIN = "admin"

ALL_SCOPES = (CAMPAIGNS_READ, CAMPAIGNS_WRITE, INTEGRATION, ADMIN)
ROLE_SCOPES = {
    "admin": [ADMIN, CAMPAIGNS_READ, CAMPAIGNS_WRITE, INTEGRATION],
    "marketer": [CAMPAIGNS_READ],
    "integration": [CAMPAIGNS_READ, CAMPAIGNS_WRITE, INTEGRATION],
}
