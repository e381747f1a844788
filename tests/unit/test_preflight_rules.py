"""The preflight's rules as a pure function: lengths and required fields come from the
ESP's limits, never from the CRM; without limits only what every email needs is checked."""

from __future__ import annotations

from dataclasses import replace

from mailshot.crm.services.esp_limits import EspLimits, campaign_limits
from mailshot.crm.sync.preflight import Audience, Draft, rules

GOOD = Draft(
    id=7,
    name="Spring news",
    subject="Hello",
    from_name="Marketing",
    from_address="news@example.com",
    reply_to=None,
    html="<p>Hi</p>",
    text=None,
    audience_source="mailing_list",
    mailing_list_id=1,
    marketing_campaign_id=None,
)
LIMITS = EspLimits(
    name_max_length=20,
    subject_max_length=10,
    from_name_max_length=12,
    from_address_max_length=30,
    required=frozenset({"name", "subject", "from_name", "from_address", "content"}),
)


def _rules(draft: Draft, limits: EspLimits | None = LIMITS) -> list[tuple[str, str]]:
    return [(p.field, p.rule) for p in rules(draft, limits, Audience.HAS_PEOPLE)]


def test_a_good_mailshot_has_no_problem() -> None:
    assert _rules(GOOD) == []
    assert _rules(GOOD, None) == []


def test_the_lengths_are_the_esps() -> None:
    draft = GOOD.model_copy(update=dict(name="N" * 21, subject="S" * 11, from_name="F" * 13))
    problems = rules(draft, LIMITS, Audience.HAS_PEOPLE)
    assert [(p.field, p.rule) for p in problems] == [
        ("name", "name_too_long"),
        ("subject", "field_too_long"),
        ("from_name", "field_too_long"),
    ]
    assert problems[0].message == "The name has 21 characters; the ESP accepts at most 20."
    assert problems[1].params == {"length": 11, "max_length": 10}
    # Without the ESP's limits no length is checked at all.
    assert _rules(draft, None) == []


def test_required_fields_follow_the_esp() -> None:
    bare = GOOD.model_copy(update=dict(subject=None, from_name=" ", html=None, text=""))
    assert _rules(bare) == [
        ("subject", "subject_missing"),
        ("from_name", "sender_missing"),
        ("content", "content_missing"),
    ]
    relaxed = replace(LIMITS, required=frozenset({"name", "from_address"}))
    assert _rules(bare, relaxed) == []


def test_addresses_and_audience() -> None:
    bad = GOOD.model_copy(update=dict(from_address="news@", reply_to="x y@example.com"))
    assert _rules(bad) == [("from_address", "sender_invalid"), ("reply_to", "reply_to_invalid")]
    for audience, rule in (
        (Audience.EMPTY, "audience_empty"),
        (Audience.SOURCE_MISSING, "audience_source_missing"),
        (Audience.SOURCE_NOT_FOUND, "audience_source_missing"),
    ):
        assert [p.rule for p in rules(GOOD, LIMITS, audience)] == [rule]
    assert rules(GOOD, LIMITS, None) == []


def test_the_esps_answer_is_read_tolerantly() -> None:
    read = campaign_limits({"campaign": {"name_max_length": 100, "required": ["name"]}})
    assert read.name_max_length == 100 and read.subject_max_length is None
    assert read.required == frozenset({"name"})
    odd = campaign_limits({"campaign": {"name_max_length": "100", "required": "name"}})
    assert odd.name_max_length is None and odd.required is None
    assert campaign_limits({}).name_max_length is None
