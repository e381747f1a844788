"""The ESP's sending pages through the real app and a real SMTP server: the Send panel
(state in words, counts, progress, the buttons the state allows, the preflight's refusal
before Send), every button (send now, schedule, pause, resume, cancel with its
confirmation, resend in doubt, test send), the recipients list by state, the campaigns
list's send state, and rights: a role without ``sends:write`` sees no button and a forged
POST is refused. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailshot.app.server import create_app
from mailshot.core.settings import Settings
from mailshot.esp.scopes import CAMPAIGNS_READ, ROLE_SCOPES, SENDS_READ
from tests.conftest import Keys
from tests.support.sends import campaign, drain, esp_client, people, send_settings
from tests.support.smtpd import DROP, Script, SmtpServer, smtp_server
from tests.support.ui_support import PageUsers, csrf_of, make_page_users, sign_in


@contextmanager
def site(
    settings: Settings, keys: Keys, script: Script | None = None
) -> Iterator[tuple[TestClient, TestClient, Settings, SmtpServer, PageUsers]]:
    """A relay, the app's pages (``ui``) and its API with the admin key (``api``)."""
    with smtp_server(script) as server:
        live = send_settings(settings, server.port)
        users = make_page_users(live)
        with TestClient(create_app(live)) as ui, esp_client(live, keys.esp_admin) as api:
            yield ui, api, live, server, users


def ctx(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    context: dict[str, Any] = resp.context
    return context


def post(ui: TestClient, path: str, page: Any, **data: str) -> Any:
    return ui.post(path, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False)


def test_send_now_from_the_page_runs_to_the_end(settings: Settings, keys: Keys) -> None:
    with site(settings, keys) as (ui, api, live, server, users):
        cid = campaign(api, 1, people(30))
        sign_in(ui, "esp", users.esp_marketer)
        page = ui.get(f"/esp/campaigns/{cid}")
        c = ctx(page)
        assert c["actions"] == {"send"} and c["refusal"] is None
        assert c["send_words"] == "Ready to send: nothing has been sent yet."
        assert "Send now" in page.text and "Test send to" in page.text
        assert ctx(ui.get("/esp/campaigns"))["send_states"] == {}

        started = post(ui, f"/esp/campaigns/{cid}/send", page, when="now")
        assert started.status_code == 303
        page = ui.get(f"/esp/campaigns/{cid}")
        c = ctx(page)
        assert c["send"].state == "sending" and c["actions"] == {"pause", "cancel"}
        assert c["refresh"] is True and '<meta http-equiv="refresh"' in page.text
        assert "Sending to 30 recipients." in page.text  # the flash
        assert c["send_words"] == "Sending: 0 of 30 recipients done."

        send_id = c["send"].id
        drain(api, live, send_id)
        page = ui.get(f"/esp/campaigns/{cid}")
        c = ctx(page)
        assert c["send"].state == "sent" and c["percent"] == 100
        assert dict((s, n) for s, _, n in c["send_counts"])["sent"] == 30
        assert c["actions"] == set() and c["refresh"] is False
        assert 'http-equiv="refresh"' not in page.text
        assert '<progress id="send-progress" max="100" value="100"' in page.text
        assert ctx(ui.get("/esp/campaigns"))["send_states"] == {cid: "sent"}
        assert len(server.received) == 30


def test_schedule_pause_resume_and_cancel_with_its_confirmation(
    settings: Settings, keys: Keys
) -> None:
    with site(settings, keys) as (ui, api, _live, _server, users):
        cid = campaign(api, 2, people(10))
        sign_in(ui, "esp", users.esp_admin)
        page = ui.get(f"/esp/campaigns/{cid}")
        at = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        post(ui, f"/esp/campaigns/{cid}/send", page, when="later", at=at)
        c = ctx(ui.get(f"/esp/campaigns/{cid}"))
        send = c["send"]
        assert send.state == "scheduled"
        assert send.scheduled_at.strftime("%Y-%m-%dT%H:%M") == at
        assert c["actions"] == {"pause", "cancel"}
        assert [f.code for f in c["findings"]] == ["SEND_SCHEDULED"]

        page = ui.get(f"/esp/campaigns/{cid}")
        assert post(ui, f"/esp/sends/{send.id}/pause", page).status_code == 303
        c = ctx(ui.get(f"/esp/campaigns/{cid}"))
        assert c["send"].state == "paused" and c["actions"] == {"resume", "cancel"}
        assert "SEND_PAUSED" in [f.code for f in c["findings"]]

        post(ui, f"/esp/sends/{send.id}/resume", page)
        c = ctx(ui.get(f"/esp/campaigns/{cid}"))
        assert c["send"].state == "scheduled"  # its time is still ahead

        asking = ui.get(f"/esp/campaigns/{cid}?confirm=cancel")
        assert "Cancel this send?" in asking.text and "Yes, cancel the send" in asking.text
        assert ctx(ui.get(f"/esp/campaigns/{cid}"))["confirm_cancel"] is False
        post(ui, f"/esp/sends/{send.id}/cancel", asking)
        c = ctx(ui.get(f"/esp/campaigns/{cid}"))
        assert c["send"].state == "cancelled" and c["actions"] == set()
        assert dict((s, n) for s, _, n in c["send_counts"])["cancelled"] == 10
        # a move the state refuses says why, in words
        page = ui.get(f"/esp/campaigns/{cid}")
        post(ui, f"/esp/sends/{send.id}/pause", page)
        assert "cannot be paused" in ui.get(f"/esp/campaigns/{cid}").text


def test_the_preflight_refusal_shows_before_send_and_disables_it(
    settings: Settings, keys: Keys
) -> None:
    with site(settings, keys) as (ui, api, _live, _server, users):
        cid = campaign(api, 3, people(5), html="<p>{{ first_name | nosuchfilter }}</p>")
        sign_in(ui, "esp", users.esp_marketer)
        page = ui.get(f"/esp/campaigns/{cid}")
        c = ctx(page)
        assert c["refusal"]["code"] == "SEND_TEMPLATE_INVALID"
        assert "cannot be rendered" in c["refusal"]["message"] and c["refusal"]["fix"]
        assert 'value="now" class="primary" disabled aria-describedby="send-refusal"' in page.text
        refused = post(ui, f"/esp/campaigns/{cid}/send", page, when="now")
        assert refused.status_code == 303
        assert ctx(ui.get(f"/esp/campaigns/{cid}"))["send"] is None
        cid = campaign(api, 4, people(5), finalize=False) or 2
        unfinished = ctx(ui.get(f"/esp/campaigns/{cid}"))
        assert unfinished["refusal"]["code"] == "SEND_AUDIENCE_NOT_FINAL"


def test_a_role_without_sends_write_sees_no_button_and_is_refused(
    settings: Settings, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    with site(settings, keys) as (ui, api, _live, _server, users):
        cid = campaign(api, 5, people(5))
        sign_in(ui, "esp", users.esp_marketer)
        page = ui.get(f"/esp/campaigns/{cid}")
        # Every role that can sign in today may send; the pages follow the role table, so
        # a read-only role is made here by taking sends:write from the marketer's role.
        monkeypatch.setitem(ROLE_SCOPES, "marketer", [CAMPAIGNS_READ, SENDS_READ])
        now = ui.get(f"/esp/campaigns/{cid}")
        c = ctx(now)
        assert c["can_send"] is False and c["actions"] == set()
        for label in ("Send now", "Schedule", "Send test", "Pause", "Cancel send"):
            assert f">{label}<" not in now.text
        forged = post(ui, f"/esp/campaigns/{cid}/send", page, when="now")
        assert forged.status_code == 403 and "Not allowed to send" in forged.text
        assert (
            post(ui, f"/esp/campaigns/{cid}/test-send", page, addresses="a@x.org").status_code
            == 403
        )
        assert api.get("integrated-campaigns/5/send").status_code == 404
        send_id = api.post("integrated-campaigns/5/send").json()["id"]
        assert post(ui, f"/esp/sends/{send_id}/pause", page).status_code == 403
        assert post(ui, f"/esp/sends/{send_id}/cancel", page).status_code == 403
        assert api.get(f"sends/{send_id}").json()["state"] == "sending"
        # and without the form's token nobody gets through
        sign_in(ui, "esp", users.esp_admin)
        no_token = ui.post(f"/esp/sends/{send_id}/pause", data={}, follow_redirects=False)
        assert no_token.status_code == 403 and "Form refused" in no_token.text


def test_recipients_by_state_with_replies_and_the_in_doubt_resend(
    settings: Settings, keys: Keys
) -> None:
    dropped: set[str] = set()

    def rcpt(_conn: int, _n: int, address: str) -> str | None:
        return "550 5.1.1 No such user here" if address.startswith("p3@") else None

    def data(_conn: int, _n: int, rcpts: tuple[str, ...]) -> str | None:
        if rcpts and rcpts[0].startswith("p5@") and rcpts[0] not in dropped:
            dropped.add(rcpts[0])
            return DROP
        return None

    with site(settings, keys, Script(rcpt=rcpt, data=data)) as (ui, api, live, server, users):
        cid = campaign(api, 7, people(12))
        sign_in(ui, "esp", users.esp_marketer)
        page = ui.get(f"/esp/campaigns/{cid}")
        post(ui, f"/esp/campaigns/{cid}/send", page, when="now")
        send_id = ctx(ui.get(f"/esp/campaigns/{cid}"))["send"].id
        drain(api, live, send_id)

        failed = ui.get(f"/esp/campaigns/{cid}/send/recipients?state=failed")
        [row] = ctx(failed)["rows"]
        assert row.email == "p3@example.org" and row.reply_code == 550
        assert "550" in failed.text and "No such user here" in failed.text

        doubt = ui.get(f"/esp/campaigns/{cid}/send/recipients?state=in_doubt")
        assert [r.email for r in ctx(doubt)["rows"]] == ["p5@example.org"]
        assert "What “in doubt” means" in doubt.text
        assert ctx(doubt)["resend_allowed"] is True
        c = ctx(ui.get(f"/esp/campaigns/{cid}"))
        assert "resend" in c["actions"]
        assert "SEND_IN_DOUBT" in [f.code for f in c["findings"]]

        everyone = ctx(ui.get(f"/esp/campaigns/{cid}/send/recipients"))
        assert len(everyone["rows"]) == 12
        assert dict((s, n) for s, _, n in everyone["tabs"])["sent"] == 10
        paged = ui.get(f"/esp/campaigns/{cid}/send/recipients?state=bogus")
        assert len(ctx(paged)["rows"]) == 12 and ctx(paged)["state"] == ""

        before = server.recipients().count("p5@example.org")
        assert post(ui, f"/esp/sends/{send_id}/resend-in-doubt", doubt).status_code == 303
        assert "1 in-doubt recipients will be sent again." in ui.get(f"/esp/campaigns/{cid}").text
        drain(api, live, send_id)
        assert server.recipients().count("p5@example.org") == before + 1
        after = ctx(ui.get(f"/esp/campaigns/{cid}"))
        assert dict((s, n) for s, _, n in after["send_counts"])["in_doubt"] == 0


def test_a_test_send_from_the_page_reaches_the_relay_and_counts_nothing(
    settings: Settings, keys: Keys
) -> None:
    with site(settings, keys) as (ui, api, _live, server, users):
        cid = campaign(api, 8, people(3))
        sign_in(ui, "esp", users.esp_marketer)
        page = ui.get(f"/esp/campaigns/{cid}")
        done = post(
            ui, f"/esp/campaigns/{cid}/test-send", page, addresses="a@t.org, p1@example.org"
        )
        assert done.status_code == 303
        shown = ui.get(f"/esp/campaigns/{cid}")
        assert "Test message sent to a@t.org, p1@example.org." in shown.text
        assert sorted(server.recipients()) == ["a@t.org", "p1@example.org"]
        assert ctx(shown)["send"] is None
        too_many = ",".join(f"x{i}@t.org" for i in range(11))
        post(ui, f"/esp/campaigns/{cid}/test-send", page, addresses=too_many)
        assert "A test send goes to 1 to 10 addresses" in ui.get(f"/esp/campaigns/{cid}").text
        assert len(server.received) == 2
