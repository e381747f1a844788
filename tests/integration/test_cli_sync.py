"""``mailshot sync`` and ``mailshot queue`` against a CRM that follows the API contract
(docs/ARCHITECTURE.md), played by an ``httpx.MockTransport``: no network, no database.

The end-to-end test against the real server is tests/e2e/test_cli_serve.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from mailshot.app.cli import api
from mailshot.app.cli.common import console
from mailshot.app.cli.main import app
from mailshot.core import credentials

KEY = "mscrm_aaaaaaaaaaaa_the-secret-part-of-the-cli-key"
runner = CliRunner()


def _progress(state: str, job_id: int = 11, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "mailshot_id": 5,
        "job_id": job_id,
        "state": state,
        "job_state": None,
        "chunks_done": 0,
        "chunks_total": None,
        "recipients_total": None,
        "recipients_written": 0,
        "excluded_total": None,
        "rate_per_second": None,
        "eta_seconds": None,
        "attempts": 0,
        "last_error": None,
        "esp_campaign_id": None,
        "queue_position": None,
    }
    return {**base, **kw}


@dataclass
class FakeCrm:
    """The CRM's side of the contract, scripted: each GET .../sync answers the next step."""

    mailshots: list[dict[str, Any]]
    steps: list[dict[str, Any]] = field(default_factory=list)
    refuse: dict[str, Any] | None = None
    queue_items: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    synchronised: list[int] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return _error(401, "AUTH_UNKNOWN_KEY", "This API key is not known here.")
        path = request.url.path
        assert path.startswith("/crm/api/v1/"), path
        path = path.removeprefix("/crm/api/v1/")
        if request.method == "GET" and path == "mailshots":
            name = request.url.params["name"]
            items = [m for m in self.mailshots if m["name"] == name]
            return httpx.Response(200, json={"items": items, "next_cursor": None, "limit": 50})
        if m := re.fullmatch(r"mailshots/(\d+)", path):
            found = [x for x in self.mailshots if x["id"] == int(m[1])]
            if not found:
                return _error(404, "NOT_FOUND", f"There is no mailshot with id {m[1]}.")
            return httpx.Response(200, json=found[0])
        if m := re.fullmatch(r"mailshots/(\d+)/synchronise", path):
            if self.refuse:
                return httpx.Response(422, json={"error": self.refuse})
            self.synchronised.append(int(m[1]))
            return httpx.Response(202, json=_progress("queued", queue_position=2))
        if re.fullmatch(r"mailshots/(\d+)/sync", path):
            step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
            return httpx.Response(200, json=step)
        if path == "sync/queue":
            items = self.queue_items
            return httpx.Response(200, json={"items": items, "total": len(items)})
        return _error(404, "ROUTE_NOT_FOUND", f"There is no such address: {path}.")


def _error(status: int, code: str, message: str, fix: str = "Do something.") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "fix": fix}})


APRIL = {"id": 5, "name": "Demo: April newsletter"}
LONG = {"id": 6, "name": "x" * 120}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder with a provisioned CLI key, and settings pointing at it."""
    for name in ("MAILSHOT_API_KEY", "MAILSHOT_CRM_URL", "MAILSHOT_CONFIG", "MAILSHOT_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(tmp_path))
    credentials.save(tmp_path / "credentials.json", credentials.Credentials(cli_key=SecretStr(KEY)))
    return tmp_path


@pytest.fixture
def fake(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCrm]:
    crm = FakeCrm(mailshots=[APRIL, LONG])
    monkeypatch.setattr(api, "transport", httpx.MockTransport(crm))
    yield crm


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_sync_by_name_waits_until_synchronised_and_exits_0(fake: FakeCrm) -> None:
    fake.steps = [
        _progress("queued", queue_position=1),
        _progress(
            "synchronising",
            recipients_total=2500,
            recipients_written=1000,
            rate_per_second=5000.0,
            eta_seconds=0.3,
        ),
        _progress(
            "synchronised",
            recipients_total=2500,
            recipients_written=2500,
            excluded_total=120,
            esp_campaign_id="42",
        ),
    ]
    code, out = _run("sync", "Demo: April newsletter", "--wait", "--interval", "0.05")
    assert code == 0, out
    assert fake.synchronised == [5]
    assert "Queued 'Demo: April newsletter'" in out
    assert "Synchronised 'Demo: April newsletter': 2,500 recipients" in out
    assert "120 left out" in out
    assert (
        str(fake.requests[0].url)
        == "http://127.0.0.1:8000/crm/api/v1/mailshots?name=Demo%3A+April+newsletter&limit=50"
    )


def test_a_failed_sync_exits_1_with_code_message_and_fix(fake: FakeCrm) -> None:
    error = {
        "code": "CAMPAIGN_NAME_TOO_LONG",
        "message": "The campaign name has 120 characters; the ESP accepts at most 100.",
        "fix": "Shorten the mailshot's name in the CRM and synchronise again.",
    }
    fake.steps = [_progress("synchronising"), _progress("failed", last_error=error)]
    code, out = _run("sync", "6", "--wait", "--interval", "0.05")
    assert code == 1
    assert fake.synchronised == [6]
    assert "CAMPAIGN_NAME_TOO_LONG: The campaign name has 120 characters" in out
    assert "Fix: Shorten the mailshot's name in the CRM and synchronise again." in out


def test_a_cancelled_sync_exits_1(fake: FakeCrm) -> None:
    fake.steps = [_progress("cancelled")]
    code, out = _run("sync", "5", "--wait", "--interval", "0.05")
    assert code == 1
    assert "cancelled" in out


def test_following_a_superseded_job_moves_to_the_new_one(fake: FakeCrm) -> None:
    fake.steps = [
        _progress("queued", job_id=12),
        _progress("synchronised", job_id=12, recipients_total=1, recipients_written=1),
    ]
    code, out = _run("sync", "5", "--wait", "--interval", "0.05")
    assert code == 0, out
    assert "superseded by job 12" in out


def test_without_wait_it_only_queues(fake: FakeCrm) -> None:
    code, out = _run("sync", "Demo: April newsletter")
    assert code == 0
    assert "position 2 in the queue" in out
    assert not [r for r in fake.requests if r.url.path.endswith("/sync")]


def test_timeout_exits_3_and_says_the_sync_carries_on(fake: FakeCrm) -> None:
    fake.steps = [_progress("synchronising", recipients_total=10, recipients_written=1)]
    code, out = _run("sync", "5", "--wait", "--timeout", "0.2", "--interval", "0.05")
    assert code == 3
    assert "CLI_SYNC_TIMEOUT" in out and "still synchronising" in out
    assert "mailshot queue" in out


def test_a_refusal_of_synchronise_is_shown_as_code_message_fix(fake: FakeCrm) -> None:
    fake.refuse = {
        "code": "SYNC_NOT_ALLOWED",
        "message": "This mailshot has no audience.",
        "fix": "Choose a mailing list.",
    }
    code, out = _run("sync", "5", "--wait")
    assert code == 1
    assert "SYNC_NOT_ALLOWED: This mailshot has no audience. Fix: Choose a mailing list." in out


def test_an_unknown_mailshot_is_named(fake: FakeCrm) -> None:
    code, out = _run("sync", "Demo: no such thing")
    assert code == 1
    assert (
        "CLI_MAILSHOT_NOT_FOUND: There is no mailshot named or numbered 'Demo: no such thing'"
        in out
    )
    assert not fake.synchronised


def test_two_mailshots_with_one_name_are_not_guessed(fake: FakeCrm) -> None:
    fake.mailshots.append({"id": 9, "name": "Demo: April newsletter"})
    code, out = _run("sync", "Demo: April newsletter")
    assert code == 1
    assert "CLI_MAILSHOT_AMBIGUOUS" in out and "ids 5, 9" in out
    assert not fake.synchronised


def test_an_unreachable_crm_is_explained(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    monkeypatch.setattr(api, "transport", httpx.MockTransport(refuse))
    code, out = _run("sync", "5")
    assert code == 1
    assert "CLI_CRM_UNREACHABLE: Cannot reach the CRM at http://127.0.0.1:8000/crm/api/v1/" in out
    assert "mailshot serve" in out


def test_without_a_key_it_says_where_to_get_one(fake: FakeCrm, data_dir: Path) -> None:
    (data_dir / "credentials.json").unlink()
    code, out = _run("sync", "5")
    assert code == 1
    assert "CLI_NO_API_KEY" in out and "MAILSHOT_API_KEY" in out


def test_the_key_from_the_environment_wins(fake: FakeCrm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSHOT_API_KEY", "mscrm_bbbbbbbbbbbb_another")
    code, out = _run("sync", "5")
    assert code == 1
    assert "AUTH_UNKNOWN_KEY" in out  # the fake knows only the provisioned key


def test_the_key_never_appears_in_the_output(fake: FakeCrm) -> None:
    fake.steps = [_progress("failed", last_error={"code": "X", "message": f"bad {KEY}"})]
    code, out = _run("sync", "5", "--wait", "--interval", "0.05")
    assert code == 1
    assert "the-secret-part" not in out


QUEUE = [  # the shape of GET /sync/queue items (crm/sync/schemas.QueueEntry)
    {
        "position": 1,
        "job_id": 11,
        "mailshot_id": 5,
        "mailshot_name": "Demo: April newsletter",
        "job_state": "running",
        "chunks_done": 0,
        "chunks_total": 1,
        "recipients_total": 2000,
        "recipients_written": 500,
        "attempts": 1,
        "takeovers": 0,
        "last_error": {"code": "ESP_UNAVAILABLE", "message": "The ESP answered 503.", "fix": ""},
        "next_retry_at": None,
        "requested_at": "2026-01-31T09:00:00Z",
        "started_at": "2026-01-31T09:00:01Z",
    },
    {
        "position": 2,
        "job_id": 12,
        "mailshot_id": 6,
        "mailshot_name": "Second in line",
        "job_state": "queued",
        "chunks_done": 0,
        "chunks_total": None,
        "recipients_total": None,
        "recipients_written": 0,
        "attempts": 0,
        "takeovers": 0,
        "last_error": None,
        "next_retry_at": None,
        "requested_at": "2026-01-31T09:00:02Z",
        "started_at": None,
    },
]


def test_queue_json_is_the_api_answer(fake: FakeCrm) -> None:
    fake.queue_items = QUEUE
    result = runner.invoke(app, ["queue", "--json"])
    assert result.exit_code == 0
    assert orjson.loads(result.stdout) == QUEUE


def test_queue_table_shows_positions_progress_attempts_and_errors(
    fake: FakeCrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.queue_items = QUEUE
    monkeypatch.setattr(console, "_width", 200)
    result = runner.invoke(app, ["queue"])
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if "│" in line]
    april = next(r for r in rows if "April" in r)
    assert "running" in april and "500/2,000 (25%)" in april and "ESP_UNAVAILABLE" in april
    second = next(r for r in rows if "Second in line" in r)
    assert second.split("│")[1].strip() == "2" and "queued" in second


def test_an_empty_queue_says_so(fake: FakeCrm) -> None:
    code, out = _run("queue")
    assert code == 0
    assert "The sync queue is empty" in out


def test_a_transient_error_is_shown_while_waiting(fake: FakeCrm) -> None:
    error = {"code": "ESP_UNAVAILABLE", "message": "The ESP answered 503.", "fix": "Wait."}
    fake.steps = [
        _progress("synchronising", last_error=error, next_retry_at="2026-01-31T09:00:05Z"),
        _progress("synchronised", recipients_total=3, recipients_written=3),
    ]
    code, out = _run("sync", "5", "--wait", "--interval", "0.05")
    assert code == 0, out
    assert "ESP_UNAVAILABLE: The ESP answered 503.; retrying at 2026-01-31T09:00:05Z" in out
