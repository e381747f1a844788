"""What the ESP accepts (``GET /esp/api/v1/limits``), and the same answer as the bridge
hands it to the CRM (``PUT /crm/api/v1/integration/esp-limits``), kept as it came."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailshot.core.web.types import JsonObject


class CampaignLimits(BaseModel):
    name_max_length: int
    subject_max_length: int
    from_name_max_length: int
    from_address_max_length: int
    required: list[str]


class RecipientLimits(BaseModel):
    max_rows_per_request: int


class Limits(BaseModel):
    """What the ESP accepts; the CRM checks a mailshot against this before syncing."""

    campaign: CampaignLimits
    recipients: RecipientLimits


class EspLimitsPut(BaseModel):
    """The ESP's answer to ``GET /esp/api/v1/limits``, as the bridge read it."""

    model_config = ConfigDict(extra="forbid")

    limits: JsonObject = Field(description="The ESP's answer, as it came.")
    read_at: AwareDatetime | None = Field(
        default=None, description="When the bridge read it from the ESP."
    )
