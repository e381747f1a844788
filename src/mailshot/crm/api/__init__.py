"""The CRM's JSON API, mounted at ``/crm/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from mailshot.crm.api import (
    api_keys,
    compliance,
    crm_settings,
    diagnosis,
    esp_limits,
    imports,
    mailing_lists,
    mailshot_sends,
    mailshots,
    marketing_campaigns,
    membership,
    organisations,
    people,
    refresh,
    templates,
    users,
)
from mailshot.crm.sync import api as sync_api


def build_router() -> APIRouter:
    router = APIRouter()
    for module in (
        organisations,
        people,
        mailing_lists,
        marketing_campaigns,
        compliance,
        templates,
        mailshots,
        mailshot_sends,
        users,
        crm_settings,
        api_keys,
        esp_limits,
        diagnosis,
        sync_api,
        imports,
        membership,
        refresh,
    ):
        router.include_router(module.router)
    return router
