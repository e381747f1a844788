"""Schemas of the CRM's API keys and refused key uses. They are the same on both parts
(:mod:`mailshot.keyadmin`); a token appears only in the answer to a create or a rotate."""

from __future__ import annotations

from mailshot.keyadmin import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    ApiKeyUpdate,
    KeyRefusalPublic,
)

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeyRotate",
    "ApiKeyRotated",
    "ApiKeyUpdate",
    "KeyRefusalPublic",
]
