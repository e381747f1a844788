"""The CRM's entries in the error catalogue (see :mod:`mailshot.errors`)."""

from __future__ import annotations

PART = "crm"
