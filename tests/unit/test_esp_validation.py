"""The ESP's pure rules: campaign checks against the limits, and recipient chunk parsing."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailshot.contracts.campaign import IntegratedCampaignPut
from mailshot.contracts.chunks import RECIPIENT_COLUMNS
from mailshot.core.errors import AppError
from mailshot.esp.models.campaigns import CAMPAIGN_NAME_MAX
from mailshot.esp.services.campaigns import campaign_problems, check_campaign, limits
from mailshot.esp.services.chunk_check import all_plausible, parse_chunk
from mailshot.esp.services.common import normalise_email, plausible_address

GOOD = {
    "snapshot": 1,
    "crm_mailshot_uid": "00000000-0000-4000-8000-000000000001",
    "name": "Spring newsletter",
    "subject": "Hello",
    "from_name": "Acme",
    "from_address": "news@example.com",
    "html": "<p>Hi</p>",
}
COLUMNS = ["seq", "person_id", "email", "first_name", "last_name", "organisation_id"]


def codes(**changes: object) -> list[str]:
    data = IntegratedCampaignPut.model_validate({**GOOD, **changes})
    return [err.code for _, err in campaign_problems(data)]


def test_limits_come_from_the_model() -> None:
    got = limits().model_dump()
    assert got["campaign"]["name_max_length"] == CAMPAIGN_NAME_MAX == 100
    assert got["campaign"]["required"] == [
        "name",
        "subject",
        "from_name",
        "from_address",
        "content",
    ]
    assert got["recipients"] == {"max_rows_per_request": 50_000}


def test_a_good_campaign_has_no_problems() -> None:
    assert codes() == []
    assert codes(html=None, text="plain") == []
    assert codes(name="x" * 100) == []


def test_name_of_101_characters_names_both_lengths() -> None:
    data = IntegratedCampaignPut.model_validate({**GOOD, "name": "n" * 101})
    with pytest.raises(AppError) as caught:
        check_campaign(data)
    err = caught.value
    assert err.code == "CAMPAIGN_NAME_TOO_LONG"
    assert err.message == "The campaign name has 101 characters; the ESP accepts at most 100."
    assert "Shorten" in err.fix and "CRM" in err.fix and "synchronise again" in err.fix


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"name": "  "}, "CAMPAIGN_NAME_MISSING"),
        ({"subject": None}, "CAMPAIGN_SUBJECT_MISSING"),
        ({"from_name": ""}, "CAMPAIGN_SENDER_MISSING"),
        ({"from_address": None}, "CAMPAIGN_SENDER_MISSING"),
        ({"from_address": "not an address"}, "CAMPAIGN_FROM_ADDRESS_INVALID"),
        ({"reply_to": "nope@"}, "CAMPAIGN_REPLY_TO_INVALID"),
        ({"html": " ", "text": None}, "CAMPAIGN_CONTENT_MISSING"),
        ({"subject": "s" * 256}, "CAMPAIGN_FIELD_TOO_LONG"),
        ({"start_date": "2026-05-02", "end_date": "2026-05-01"}, "CAMPAIGN_DATES_INVALID"),
    ],
)
def test_each_problem_has_its_own_code(changes: dict[str, object], code: str) -> None:
    assert codes(**changes) == [code]


def test_every_problem_is_listed_in_the_details() -> None:
    data = IntegratedCampaignPut.model_validate(
        {
            "snapshot": 1,
            "crm_mailshot_uid": GOOD["crm_mailshot_uid"],
            "name": "x" * 120,
            "from_address": "bad",
        }
    )
    with pytest.raises(AppError) as caught:
        check_campaign(data)
    fields = [d.field for d in caught.value.details]
    assert caught.value.code == "CAMPAIGN_NAME_TOO_LONG"
    assert fields == ["name", "subject", "from_name", "from_address", "content"]


def test_chunk_columns_in_any_order_and_duplicates_keep_the_first() -> None:
    parsed = parse_chunk(
        ["email", "person_id"],
        [[" Ann@Example.COM ", 1], ["bob@example.com", 2], ["ann@example.com", 3]],
    )
    assert [(c["email_normalised"], c["crm_person_id"]) for c in parsed.contacts] == [
        ("ann@example.com", 1),
        ("bob@example.com", 2),
    ]
    assert parsed.contacts[0]["email"] == "Ann@Example.COM"
    assert parsed.duplicates == [(3, "ann@example.com")]
    assert parsed.present == ()


def test_an_empty_chunk_writes_nothing_and_is_not_an_error() -> None:
    parsed = parse_chunk(["person_id", "email", "first_name"], [])
    assert (parsed.rows, parsed.duplicates) == ([], [])


def test_a_name_over_255_characters_is_cut_and_a_missing_one_is_empty() -> None:
    parsed = parse_chunk(
        ["person_id", "email", "first_name", "last_name"],
        [[1, "a@example.com", "x" * 300, None], [2, "b@example.com", "Bo", "Lee"]],
    )
    assert [(len(r[3]), r[4]) for r in parsed.rows] == [(255, ""), (2, "Lee")]


def test_chunk_without_required_columns_is_refused() -> None:
    with pytest.raises(AppError) as caught:
        parse_chunk(["seq", "email"], [[0, "a@example.com"]])
    assert caught.value.code == "RECIPIENT_COLUMNS_MISSING"
    assert "person_id" in caught.value.message


def test_bad_rows_are_named() -> None:
    rows = [
        [0, 1, "a@example.com", "A", "B", None],
        [1, "x", "b@example.com", "A", "B", None],
        [2, 3, "no-at-sign", "A", "B", None],
        [3, 4],
    ]
    with pytest.raises(AppError) as caught:
        parse_chunk(COLUMNS, rows)
    err = caught.value
    assert err.code == "RECIPIENT_ROWS_INVALID"
    assert [d.field for d in err.details] == ["rows.1.person_id", "rows.2.email", "rows.3"]
    assert "3 recipient rows" in err.message


def test_too_many_rows_are_refused() -> None:
    with pytest.raises(AppError) as caught:
        parse_chunk(["person_id", "email"], [[i, f"p{i}@example.com"] for i in range(50_001)])
    assert caught.value.code == "RECIPIENTS_TOO_MANY_ROWS"


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("ann@example.com", True),
        ("x.y+z@sub.ex-ample.co.uk", True),
        ("ann@example", False),
        ("ann@@example.com", False),
        ("ann smith@example.com", False),
        ("@example.com", False),
        ("ann@example..com", False),
    ],
)
def test_plausible_address(address: str, ok: bool) -> None:
    assert plausible_address(normalise_email(address)) is ok


#: Characters that matter to the address rule, and a few that do not.
_ADDRESS_CHARS = st.sampled_from(list("ab.@-+ \n\t\x0b\x1c\x1f\u00a0é\u2003"))
_ADDRESSES = st.lists(st.text(_ADDRESS_CHARS, min_size=0, max_size=12), max_size=6)


@given(_ADDRESSES)
@example(["a@b.c@d.e", "f.g"])  # two "@" in one address, none in the next
@example(["a@b.c", "d@e..f"])
@example(["a@.b", "c@d.e"])
@example(["c@d.e", "a@.b"])
@example(["a.@b.c", "x..y@b.c"])  # dots anywhere in the local part are fine
@example(["a@b.c", "d@e.f."])
@example(["d@e.f.", "a@b.c"])
@example(["a@b.c", ""])
@example(["a@b.c", "@d.e"])
@example(["a@b.c\x1c"])
@example(["a@b.c\nd@e.f"])  # one "address" holding a newline
@example(["a@b.c", "x@y.z\u00a0"])
def test_a_chunk_is_plausible_exactly_when_each_address_is(addresses: list[str]) -> None:
    """The chunk-wide check (one regular expression over the newline-joined addresses)
    agrees with the per-address rule the error report uses."""
    expected = all(plausible_address(a) for a in addresses)
    assert all_plausible("\n".join(addresses), len(addresses)) is expected


def test_the_organisation_column_is_read_and_an_older_chunk_without_it_is_accepted() -> None:
    cols = [*COLUMNS, "organisation"]
    parsed = parse_chunk(
        cols,
        [
            [0, 1, "a@example.com", "A", "B", 7, "Acme Ltd"],
            [1, 2, "b@example.com", "C", "D", None, None],
        ],
    )
    assert [(c["crm_organisation_id"], c["organisation"]) for c in parsed.contacts] == [
        (7, "Acme Ltd"),
        (None, ""),
    ]
    assert "organisation" in parsed.present
    older = parse_chunk(COLUMNS, [[0, 1, "a@example.com", "A", "B", 7]])
    assert "organisation" not in older.present  # so contacts keep the name they have


def test_an_organisation_that_is_not_a_string_is_named() -> None:
    with pytest.raises(AppError) as caught:
        parse_chunk([*COLUMNS, "organisation"], [[0, 1, "a@example.com", "A", "B", 7, 12]])
    assert caught.value.code == "RECIPIENT_ROWS_INVALID"
    assert [d.field for d in caught.value.details] == ["rows.0.organisation"]


def test_a_column_the_esp_does_not_know_is_refused_not_dropped() -> None:
    with pytest.raises(AppError) as caught:
        parse_chunk(["person_id", "email", "nickname"], [[1, "a@example.com", "Al"]])
    assert caught.value.code == "RECIPIENT_COLUMNS_UNKNOWN"
    assert "'nickname'" in caught.value.message
    # Every column the CRM serves is known.
    parse_chunk(list(RECIPIENT_COLUMNS), [[0, 1, "a@example.com", "A", "B", 7, "Acme"]])
