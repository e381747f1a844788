"""A send cancelled while a worker holds a window ``sending``, and that worker then dies:
no takeover ever happens on a cancelled send's units, so the rows it left must still be
resolved (``in_doubt``) once its lease lapses, with the counts exact. SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from mailshot.core.db.engine import db_now
from mailshot.core.settings import Settings
from mailshot.esp.sending.window import Marked, mark
from mailshot.esp.services.sends_queue import LEASABLE_LANE, SEND_QUEUE, units
from mailshot.queue import claim
from tests.conftest import Keys
from tests.support.sends import campaign, esp_client, ledger, people, send_settings, sessions_for


def test_rows_left_sending_by_a_worker_dead_after_the_cancel_become_in_doubt(
    settings: Settings, keys: Keys
) -> None:
    live = send_settings(settings, 9, send_batch_size=20, send_window=5)
    sessions = sessions_for(live)
    try:
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(40))
            send_id = esp.post("integrated-campaigns/1/send").json()["id"]
            # A worker claims a unit and marks a window `sending` (its data about to go out)
            with sessions() as s:
                lease = claim(
                    SEND_QUEUE,
                    s,
                    worker_id="doomed",
                    lease_seconds=60,
                    max_takeovers=3,
                    lane=LEASABLE_LANE,
                )
            assert lease is not None
            with sessions() as s:
                window = mark(
                    s, lease.unit_id, lease.token, window=5, lease_seconds=60, in_flight=False
                )
            assert window.status == Marked.OK and len(window.rows) == 5

            cancelled = esp.post(f"sends/{send_id}/cancel").json()
            # the worker still holds its lease: its window is in flight, not yet in doubt
            assert cancelled["state"] == "cancelled"
            assert cancelled["counts"]["sending"] == 5
            assert cancelled["counts"]["cancelled"] == 35
            assert esp.get(f"sends/{send_id}").json()["counts"]["sending"] == 5

            # ... and dies: its lease lapses, and nothing will ever take the unit over
            with sessions() as s:
                past = db_now(s) - timedelta(seconds=1)
                s.execute(
                    update(units).where(units.c.id == lease.unit_id).values(lease_expires_at=past)
                )
                s.commit()
            send = esp.get(f"sends/{send_id}").json()
            assert send["counts"]["sending"] == 0
            assert send["counts"]["in_doubt"] == 5
            assert send["counts"]["cancelled"] == 35
            assert sum(send["counts"].values()) == 40
            doubt = ledger(esp, send_id, "in_doubt")
            assert sorted(r["id"] for r in doubt) == sorted(r.id for r in window.rows)
            assert all(r["reply_text"] == "the worker sending it stopped answering" for r in doubt)
            assert ledger(esp, send_id, "sending") == []
            # reading again changes nothing more
            assert esp.get(f"sends/{send_id}").json()["counts"] == send["counts"]
    finally:
        sessions.kw["bind"].dispose()
