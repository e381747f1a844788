"""The messages between the parts: one definition each, which both sides agree on."""

from __future__ import annotations

from uuid import uuid4

import orjson

from mailshot.bridge.units import HANDLERS, on_side_lane
from mailshot.contracts.campaign import (
    CAMPAIGN_FIELDS,
    CampaignFieldsAnswer,
    IntegratedCampaignPut,
)
from mailshot.contracts.chunks import (
    RECIPIENT_COLUMNS,
    chunk_json,
    recipient_chunk_from_json,
    with_snapshot,
)
from mailshot.contracts.states import ACTIVE_JOB_STATES, UnitKind
from mailshot.crm.sync.kinds import SYNC_QUEUE
from mailshot.crm.sync.states import JOB_MOVES


def test_the_bridge_has_one_handler_for_every_kind_the_crm_leases() -> None:
    assert set(HANDLERS) == set(UnitKind) == set(SYNC_QUEUE.kinds)
    assert [k for k in UnitKind if on_side_lane(k)] == [UnitKind.PREPARE]
    assert not on_side_lane("send")


def test_the_active_states_of_the_api_are_those_the_moves_leave() -> None:
    assert set(ACTIVE_JOB_STATES) == JOB_MOVES.active


def test_the_upsert_carries_every_campaign_field_the_crm_answers() -> None:
    values = {name: f"the {name}" for name in CAMPAIGN_FIELDS}
    answer = CampaignFieldsAnswer(
        crm_mailshot_id=3,
        crm_mailshot_uid=str(uuid4()),
        snapshot=12,
        mailshot_type="static",
        **values,
    )
    put = IntegratedCampaignPut.of(answer)
    assert put.campaign_fields() == values
    assert (put.snapshot, str(put.crm_mailshot_uid)) == (12, answer.crm_mailshot_uid)
    sent = orjson.loads(put.model_dump_json(exclude_defaults=True))
    assert set(sent) == {"snapshot", "crm_mailshot_uid", *CAMPAIGN_FIELDS}


def test_a_chunk_as_the_crm_renders_it_is_what_the_esp_parses_once_spliced() -> None:
    rows = [[0, 501, "ann@example.com", "Ann", "Lee", 7], [1, 502, "bo@example.com", "", "", None]]
    served = chunk_json(orjson.dumps(rows))
    chunk = recipient_chunk_from_json(with_snapshot(served, 12))
    assert (chunk.snapshot, chunk.columns, chunk.rows) == (12, list(RECIPIENT_COLUMNS), rows)
    empty = recipient_chunk_from_json(with_snapshot(chunk_json(b"[]"), 0))
    assert (empty.snapshot, empty.rows) == (0, [])
