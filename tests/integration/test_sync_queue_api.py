"""The sync queue over the CRM's HTTP API, in-process: Synchronise, lease, prepare,
recipients, complete, progress, cancel, retry, exclusions, and the refusals."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from mailshot.core.db.engine import make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.crm.sync import queue
from tests.conftest import Keys
from tests.support.e2e_data import add_list, add_mailshot, crm_engine

API = "/crm/api/v1"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Bridge:
    """The bridge's calls, made by hand."""

    def __init__(self, client: TestClient, keys: Keys) -> None:
        self.c = client
        self.h = _h(keys.crm_integration)

    def lease(self, worker: str = "w1") -> dict[str, Any] | None:
        r = self.c.post(f"{API}/sync/lease", json={"worker_id": worker}, headers=self.h)
        if r.status_code == 204:
            return None
        assert r.status_code == 200, r.text
        unit: dict[str, Any] = r.json()["unit"]
        return unit

    def call(self, unit: dict[str, Any], action: str, **body: Any) -> Any:
        return self.c.post(
            f"{API}/sync/units/{unit['unit_id']}/{action}",
            json={"lease_token": unit["lease_token"], **body},
            headers=self.h,
        )

    def recipients(self, unit: dict[str, Any]) -> Any:
        return self.c.get(
            f"{API}/sync/jobs/{unit['job_id']}/recipients",
            params={"first_seq": unit["first_seq"], "last_seq": unit["last_seq"]},
            headers=self.h,
        )

    def run_all(self) -> list[dict[str, Any]]:
        """Work every due unit to completion, as a well-behaved worker would."""
        done = []
        while (unit := self.lease()) is not None:
            if unit["kind"] == "prepare":
                assert self.call(unit, "prepare").status_code == 200
                r = self.call(unit, "complete", esp_campaign_id=f"esp-{unit['mailshot_id']}")
            elif unit["kind"] == "chunk":
                rows = self.recipients(unit).json()["rows"]
                r = self.call(unit, "complete", recipients_written=len(rows))
            else:
                r = self.call(unit, "complete", result={"audience_count": unit["recipients_total"]})
            assert r.status_code == 200, r.text
            done.append(unit)
        return done


def queue_directly(settings: Settings, mailshot_id: int) -> None:
    """Queue a sync through the service, skipping the preflight."""
    engine = crm_engine(settings)
    with make_sessionmaker(engine)() as session:
        queue.request_sync(session, mailshot_id, chunk_size=settings.chunk_size, preflight=False)
    engine.dispose()


def _setup(settings: Settings, n: int, excluded: int = 0, **fields: Any) -> tuple[int, set[str]]:
    engine = crm_engine(settings)
    list_id, emails = add_list(engine, f"l{n}", n, excluded=excluded)
    name = fields.pop("name", f"Mailshot of {n}")
    mailshot_id = add_mailshot(engine, list_id, name, **fields)
    engine.dispose()
    return mailshot_id, emails


def test_a_sync_runs_from_request_to_synchronised(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    settings.chunk_size = 4
    mailshot_id, emails = _setup(settings, 10, excluded=2)
    user = _h(keys.crm_marketer)

    asked = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=user)
    assert asked.status_code == 202, asked.text
    status = asked.json()
    assert status["state"] == "queued"
    assert status["queue_position"] == 1
    assert "Queued" in status["summary"]

    bridge = Bridge(client, keys)
    prep = bridge.lease()
    assert prep is not None and prep["kind"] == "prepare" and prep["attempt"] == 1
    # As the bridge does: the campaign's fields first (it creates the ESP campaign), then
    # the snapshot.
    campaign = bridge.call(prep, "campaign").json()
    assert (campaign["name"], campaign["snapshot"]) == ("Mailshot of 10", prep["job_id"])
    fields = bridge.call(prep, "prepare").json()
    assert fields["name"] == "Mailshot of 10"
    assert fields["snapshot"] == prep["job_id"]
    assert (fields["recipients_total"], fields["excluded_total"], fields["chunks_total"]) == (
        8,
        2,
        2,
    )
    # The ESP campaign exists: the chunks can be written before the prepare unit completes.
    seen: set[str] = set()
    chunks = [bridge.lease(), bridge.lease()]
    assert bridge.lease() is None  # the finalize waits for both chunks
    assert bridge.call(prep, "complete", esp_campaign_id="77").status_code == 200
    for unit in chunks:
        assert unit is not None and unit["kind"] == "chunk"
        body = bridge.recipients(unit).json()
        assert body["columns"] == [
            "seq",
            "person_id",
            "email",
            "first_name",
            "last_name",
            "organisation_id",
            "organisation",
        ]
        seen |= {row[2] for row in body["rows"]}
        assert (
            bridge.call(unit, "complete", recipients_written=len(body["rows"])).status_code == 200
        )
    assert seen == emails

    mid = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=user).json()
    assert mid["state"] == "synchronising"
    assert (mid["chunks_done"], mid["chunks_total"], mid["recipients_written"]) == (2, 2, 8)
    assert mid["job_state"] == "finalizing"

    fin = bridge.lease()
    assert fin is not None and fin["kind"] == "finalize" and fin["recipients_total"] == 8
    assert bridge.call(fin, "complete", result={"audience_count": 8}).status_code == 200

    end = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=user).json()
    assert end["state"] == "synchronised"
    assert end["job_state"] == "completed"
    assert end["esp_campaign_id"] == "77"
    assert end["recipients_synced"] == 8 and end["recipients_excluded"] == 2
    assert end["queue_position"] is None

    excl = client.get(f"{API}/sync/jobs/{prep['job_id']}/exclusions", headers=user).json()
    assert [e["reason"] for e in excl["items"]] == ["opted_out", "opted_out"]
    job = client.get(f"{API}/sync/jobs/{prep['job_id']}", headers=user).json()
    assert job["units"] == {"done": 4}
    assert client.get(f"{API}/sync/queue", headers=user).json()["total"] == 0


def test_completion_is_idempotent_and_a_lost_lease_changes_nothing(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id, _ = _setup(settings, 3)
    client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=_h(keys.crm_admin))
    bridge = Bridge(client, keys)
    prep = bridge.lease()
    assert prep is not None
    bridge.call(prep, "prepare")
    first = bridge.call(prep, "complete", esp_campaign_id="9")
    again = bridge.call(prep, "complete", esp_campaign_id="9")
    assert first.status_code == again.status_code == 200
    assert again.json()["repeated"] is True

    chunk = bridge.lease()
    assert chunk is not None
    forged = {**chunk, "lease_token": "0" * 32}
    lost = bridge.call(forged, "complete", recipients_written=3)
    assert lost.status_code == 409
    assert lost.json()["error"]["code"] == "SYNC_LEASE_LOST"
    assert bridge.call(forged, "heartbeat").json()["error"]["code"] == "SYNC_LEASE_LOST"
    job = client.get(f"{API}/sync/jobs/{chunk['job_id']}", headers=_h(keys.crm_admin)).json()
    assert job["chunks_done"] == 0
    assert bridge.call(chunk, "heartbeat").status_code == 200


def test_synchronise_again_supersedes_and_the_old_worker_is_told(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id, _ = _setup(settings, 3)
    admin = _h(keys.crm_admin)
    client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    bridge = Bridge(client, keys)
    old = bridge.lease()
    assert old is not None
    second = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin).json()
    assert second["job_id"] != old["job_id"]
    ended = bridge.call(old, "heartbeat")
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "SYNC_JOB_ENDED"
    old_job = client.get(f"{API}/sync/jobs/{old['job_id']}", headers=admin).json()
    assert old_job["state"] == "superseded"
    assert old_job["superseded_by"] == second["job_id"]
    done = bridge.run_all()
    assert {u["job_id"] for u in done} == {second["job_id"]}
    assert client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=admin).json()["state"] == (
        "synchronised"
    )


def test_permanent_failure_is_shown_and_retry_starts_again(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id, _ = _setup(settings, 2)
    admin = _h(keys.crm_admin)
    early = client.post(f"{API}/mailshots/{mailshot_id}/sync/retry", headers=admin)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "SYNC_NOT_RETRYABLE"
    client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    bridge = Bridge(client, keys)
    prep = bridge.lease()
    assert prep is not None
    bridge.call(prep, "prepare")
    r = bridge.call(
        prep,
        "fail",
        permanent=True,
        code="CAMPAIGN_NAME_TOO_LONG",
        message="The campaign name has 101 characters; the ESP accepts at most 100.",
        fix="Shorten it in the CRM and synchronise again.",
    )
    assert r.status_code == 200 and r.json()["job_state"] == "failed"
    status = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=admin).json()
    assert status["state"] == "failed"
    assert status["last_error"]["code"] == "CAMPAIGN_NAME_TOO_LONG"
    assert status["last_error"]["fix"] == "Shorten it in the CRM and synchronise again."
    assert "101 characters" in status["summary"]
    assert bridge.lease() is None

    again = client.post(f"{API}/mailshots/{mailshot_id}/sync/retry", headers=admin)
    assert again.status_code == 202 and again.json()["state"] == "queued"
    assert again.json()["last_error"] is None
    bridge.run_all()
    assert client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=admin).json()["state"] == (
        "synchronised"
    )


def test_cancel_stops_the_work(client: TestClient, keys: Keys, settings: Settings) -> None:
    mailshot_id, _ = _setup(settings, 2)
    admin = _h(keys.crm_admin)
    nothing = client.post(f"{API}/mailshots/{mailshot_id}/sync/cancel", headers=admin)
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "SYNC_NOT_ACTIVE"
    client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    r = client.post(f"{API}/mailshots/{mailshot_id}/sync/cancel", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert Bridge(client, keys).lease() is None


def test_refusals(client: TestClient, keys: Keys, settings: Settings) -> None:
    mailshot_id, _ = _setup(settings, 2, sync_with=None)
    admin = _h(keys.crm_admin)
    r = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "SYNC_TARGET_MISSING"

    no_source, _ = _setup(settings, 1, mailing_list_id=None)
    r = client.post(f"{API}/mailshots/{no_source}/synchronise", headers=admin)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "SYNC_PREFLIGHT_FAILED"
    assert r.json()["error"]["details"][0]["field"] == "mailing_list_id"

    long_name, _ = _setup(settings, 4, name="x" * 101)  # the ESP decides, not the CRM
    assert client.post(f"{API}/mailshots/{long_name}/synchronise", headers=admin).status_code == (
        202
    )
    assert client.post(f"{API}/mailshots/999999/synchronise", headers=admin).status_code == 404

    marketer = _h(keys.crm_marketer)
    r = client.post(f"{API}/sync/lease", json={"worker_id": "x"}, headers=marketer)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    r = client.post(f"{API}/mailshots/{long_name}/synchronise", headers=_h(keys.crm_integration))
    assert r.status_code == 403


def test_an_empty_audience_fails_with_its_reasons(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    mailshot_id, _ = _setup(settings, 3, excluded=3)
    admin = _h(keys.crm_admin)
    # The preflight refuses an empty audience at Synchronise; put it in the queue directly
    # (as if everybody opted out after Synchronise) so that the prepare step meets it.
    queue_directly(settings, mailshot_id)
    bridge = Bridge(client, keys)
    prep = bridge.lease()
    assert prep is not None
    r = bridge.call(prep, "prepare")
    assert r.status_code == 422 and r.json()["error"]["code"] == "SYNC_AUDIENCE_EMPTY"
    status = client.get(f"{API}/mailshots/{mailshot_id}/sync", headers=admin).json()
    assert status["state"] == "failed"
    assert status["last_error"]["code"] == "SYNC_AUDIENCE_EMPTY"
    assert "3 opted out" in status["last_error"]["message"]
    excl = client.get(f"{API}/sync/jobs/{prep['job_id']}/exclusions", headers=admin).json()
    assert len(excl["items"]) == 3


def test_worker_heartbeats_show_on_the_integration_page(client: TestClient, keys: Keys) -> None:
    r = client.post(
        f"{API}/integration/heartbeat",
        json={"worker_id": "host:1", "host": "host", "version": "0.1.0"},
        headers=_h(keys.crm_integration),
    )
    assert r.status_code == 204
    page = client.get(f"{API}/integration", headers=_h(keys.crm_marketer)).json()
    assert page["running"] is True
    assert [w["worker_id"] for w in page["workers"]] == ["host:1"]


def test_a_waiting_lease_gets_the_unit_queued_meanwhile(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """The long poll: a lease that finds nothing waits, and answers as soon as Synchronise
    queues a job, not when its wait is over."""
    mailshot_id, _ = _setup(settings, 3)
    bridge = Bridge(client, keys)
    answers: list[Any] = []

    def wait_for_work() -> None:
        started = time.monotonic()
        r = client.post(
            f"{API}/sync/lease", json={"worker_id": "w1", "wait_seconds": 8}, headers=bridge.h
        )
        answers.append((r, time.monotonic() - started))

    waiter = threading.Thread(target=wait_for_work)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive(), "the lease answered before any work was queued"
    pressed = client.post(f"{API}/mailshots/{mailshot_id}/synchronise", headers=_h(keys.crm_admin))
    assert pressed.status_code == 202, pressed.text
    waiter.join(8)
    [(r, took)] = answers
    assert r.status_code == 200, r.text
    unit = r.json()["unit"]
    assert (unit["kind"], unit["mailshot_id"]) == ("prepare", mailshot_id)
    assert took < 4  # woken by the queueing, well before its 8 s were up


def test_a_waiting_lease_with_no_work_answers_204_after_its_wait(
    client: TestClient, keys: Keys
) -> None:
    bridge = Bridge(client, keys)
    started = time.monotonic()
    r = client.post(
        f"{API}/sync/lease", json={"worker_id": "w1", "wait_seconds": 0.3}, headers=bridge.h
    )
    assert r.status_code == 204 and time.monotonic() - started >= 0.3
    too_long = client.post(
        f"{API}/sync/lease", json={"worker_id": "w1", "wait_seconds": 11}, headers=bridge.h
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "VALIDATION_FAILED"
    assert too_long.json()["error"]["details"][0]["field"].endswith("wait_seconds")
