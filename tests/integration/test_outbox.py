"""The Outbox end to end on both database backends: a real aiosmtpd capture server on a
free port of 127.0.0.1 receives messages sent by aiosmtplib, keeps them (in batches),
enforces its bounds and its retention, and the ESP's pages and the CLI show them; the
message's HTML is served only into a sandboxed frame under a policy that runs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import aiosmtplib
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mailshot.app.cli.main import app as cli_app
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.esp.outbox import outbox_needed
from mailshot.esp.outbox.server import OutboxServer
from mailshot.esp.outbox.writer import BatchWriter
from mailshot.esp.services import outbox
from mailshot.esp.services.outbox import Incoming, Retention
from tests.support import aio
from tests.support.ui_support import PageUsers, make_page_users, sign_in

SUBJECT = "Grüße aus Köln: 10 % off"
HTML = (
    '<html><body><h1 id="hello">Hello Ada</h1><p>Our <b>spring</b> sale.</p>'
    '<img src="https://tracker.example.net/open.gif" alt="">'
    "<script>window.parent.document.title='pwned'</script></body></html>"
)
DKIM = (
    "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=mailshot; "
    "h=from:to:subject:list-unsubscribe; bh=AAAA; b=BBBB"
)


def campaign_message(to: str = "ada@example.org") -> EmailMessage:
    """A multipart/alternative message as a campaign sends it (an encoded-word subject)."""
    m = EmailMessage()
    m["From"] = "Spring Team <team@example.com>"
    m["To"] = to
    m["Subject"] = SUBJECT
    m["Message-ID"] = "<42.7@mailshot.example.com>"
    m["List-Unsubscribe"] = "<https://esp.example.com/u/tok>, <mailto:u@example.com>"
    m["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    m["DKIM-Signature"] = DKIM
    m.set_content("Hello Ada,\nour spring sale.\n")
    m.add_alternative(HTML, subtype="html")
    m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="tc.pdf")
    return m


def plain_message(subject: str, size: int = 0) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "team@example.com"
    m["To"] = "list@example.org"
    m["Subject"] = subject
    m.set_content("x" * size or "short")
    return m


@pytest.fixture
def capture(settings: Settings) -> Iterator[OutboxServer]:
    server = OutboxServer(settings.model_copy(update={"outbox_smtp_port": 0}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def send(port: int, *messages: EmailMessage, **kwargs: object) -> list[tuple[object, str]]:
    async def run() -> list[tuple[object, str]]:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            return [await smtp.send_message(m, **kwargs) for m in messages]  # type: ignore[arg-type]

    return aio.run(run())


def session_of(settings: Settings):  # type: ignore[no-untyped-def]
    return make_sessionmaker(make_unpooled_engine(settings.esp_db_url()))()


def test_messages_sent_over_smtp_are_kept_and_listed(
    settings: Settings, capture: OutboxServer
) -> None:
    replies = send(capture.port, campaign_message(), plain_message("Second"))
    assert all("Ok: kept in the Outbox as message" in r[1] for r in replies)
    send(
        capture.port,
        plain_message("To two"),
        sender="bounce+7@example.com",
        recipients=["b@example.org", "c@example.org"],
    )
    with session_of(settings) as s:
        rows, cursor = outbox.list_page(s, cursor=None, limit=10)
        assert cursor is None
        assert [r.subject for r in rows] == ["To two", "Second", SUBJECT]  # newest first
        newest, _, first = rows
        assert newest.mail_from == "bounce+7@example.com"
        assert newest.recipients.split("\n") == ["b@example.org", "c@example.org"]
        assert (first.from_header, first.to_header) == (
            "Spring Team <team@example.com>",
            "ada@example.org",
        )
        assert first.message_id == "<42.7@mailshot.example.com>"
        raw = outbox.source(s, first.id)
        assert first.size == len(raw)
        back = BytesParser(policy=policy.default).parsebytes(raw)
        assert back["Subject"] == SUBJECT and "=?utf-8?" in raw.decode()  # sent encoded
        assert back.get_body(("html",)).get_content().strip() == HTML  # type: ignore[union-attr]
        assert outbox.count(s) == 3
        assert [r.subject for r in outbox.list_page(s, cursor=None, limit=5, q="C@EXAMPLE")[0]] == [
            "To two"
        ]
        assert outbox.count(s, "köln") + outbox.count(s, "Köln") >= 1
        assert outbox.count(s, "100%") == 0  # LIKE wildcards are taken literally
        page1, cursor = outbox.list_page(s, cursor=None, limit=2)
        page2, end = outbox.list_page(s, cursor=cursor, limit=2)
        assert [r.id for r in page1 + page2] == [r.id for r in rows] and end is None


def test_the_bounds_refuse_only_what_is_past_them(settings: Settings) -> None:
    bounded = settings.model_copy(
        update={
            "outbox_smtp_port": 0,
            "outbox_max_message_bytes": 4096,
            "outbox_max_recipients": 2,
            "outbox_max_connections": 2,
        }
    )
    server = OutboxServer(bounded)
    server.start()
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
            send(server.port, plain_message("Big", size=8000))
        assert too_big.value.code == 552
        [(refused, _)] = send(
            server.port,
            plain_message("Three"),
            recipients=["a@x.example", "b@x.example", "c@x.example"],
        )
        assert list(refused) == ["c@x.example"]  # type: ignore[call-overload]
        assert refused["c@x.example"].code == 452  # type: ignore[index]

        async def third_connection() -> int:
            held = [aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port) for _ in range(2)]
            for smtp in held:
                await smtp.connect()
            try:
                extra = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port)
                with pytest.raises(aiosmtplib.SMTPConnectResponseError) as refused:
                    await extra.connect()
                return refused.value.code
            finally:
                for smtp in held:
                    await smtp.quit()

        assert aio.run(third_connection()) == 421
        send(server.port, plain_message("After"))  # the connections were given back
    finally:
        server.stop()
    with session_of(settings) as s:
        kept = outbox.list_page(s, cursor=None, limit=10)[0]
        assert [(m.subject, m.recipient_count) for m in kept] == [("After", 1), ("Three", 2)]


def test_retention_keeps_the_newest_and_counts_what_it_deleted(settings: Settings) -> None:
    server = OutboxServer(
        settings.model_copy(update={"outbox_smtp_port": 0, "outbox_keep_messages": 3})
    )
    server.start()
    try:
        send(server.port, *[plain_message(f"m{i}") for i in range(5)])
    finally:
        server.stop()
    with session_of(settings) as s:
        assert [m.subject for m in outbox.list_page(s, cursor=None, limit=10)[0]] == [
            "m4",
            "m3",
            "m2",
        ]
        t = outbox.totals(s)
        assert (t.messages, t.deleted, outbox.count(s)) == (3, 2, 3)
        assert t.bytes == sum(m.size for m in outbox.list_page(s, cursor=None, limit=10)[0])
        # By bytes: 600-byte messages, 2,000 bytes kept -> the newest three.
        now = utcnow()
        big = [
            Incoming(now, "a@x", ("b@y",), b"Subject: b%d\r\n\r\n" % i + b"x" * 585)
            for i in range(5)
        ]
        outbox.store(s, big, Retention(messages=100, bytes=2000))
        kept = outbox.list_page(s, cursor=None, limit=10)[0]
        assert [m.subject for m in kept] == ["b4", "b3", "b2"]
        assert outbox.totals(s).deleted == 2 + 5
        assert outbox.totals(s).bytes == sum(m.size for m in kept) <= 2000


def test_messages_that_queue_up_are_kept_in_one_transaction(settings: Settings) -> None:
    engine = make_unpooled_engine(settings.esp_db_url())
    writer = BatchWriter(make_sessionmaker(engine), Retention(10_000, 2**30))
    kept: list[int | None] = []
    now = utcnow()
    for i in range(300):  # queued before the writer runs: one batch
        raw = b"Subject: n%d\r\n\r\nhi\r\n" % i
        writer.submit(Incoming(now, "a@x", ("b@y",), raw), lambda ident, _e: kept.append(ident))
    writer.start()
    writer.stop()
    engine.dispose()
    assert writer.batches == 1
    assert len(kept) == 300 and None not in kept and kept == sorted(kept)


def test_serve_runs_the_outbox_only_without_a_relay(settings: Settings) -> None:
    assert outbox_needed(settings)  # no smtp_relays setting (or an empty one)

    class WithRelay:
        smtp_relays = [{"host": "smtp.example.com"}]

    assert not outbox_needed(WithRelay())


@pytest.fixture
def users(settings: Settings) -> PageUsers:
    return make_page_users(settings)


def test_the_outbox_pages_show_a_message_and_never_run_its_html(
    settings: Settings, client: TestClient, users: PageUsers, capture: OutboxServer
) -> None:
    assert client.get("/esp/outbox", follow_redirects=False).status_code == 303  # sign in first
    sign_in(client, "esp", users.esp_marketer)
    empty = client.get("/esp/outbox")
    assert "Nothing has been sent yet" in empty.text and "127.0.0.1:" in empty.text
    assert 'href="/esp/outbox"' in empty.text  # the navigation entry

    send(capture.port, campaign_message(), plain_message("Other"))
    listing = client.get("/esp/outbox", params={"q": "ada@"})
    assert listing.context["found"] == 1  # type: ignore[attr-defined]
    [m] = listing.context["messages"]  # type: ignore[attr-defined]
    assert SUBJECT in listing.text

    page = client.get(f"/esp/outbox/{m.id}")
    assert page.status_code == 200
    view = page.context["view"]  # type: ignore[attr-defined]
    assert view.unsubscribe == ["https://esp.example.com/u/tok", "mailto:u@example.com"]
    assert view.one_click and [(d.domain, d.selector) for d in view.dkim] == [
        ("example.com", "mailshot")
    ]
    assert [(a.filename, a.content_type) for a in view.attachments] == [
        ("tc.pdf", "application/pdf")
    ]
    assert [p.content_type for p in view.parts] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
    ]
    assert ("Subject", SUBJECT) in view.headers  # decoded
    assert "our spring sale." in page.text and view.remote_content
    # The HTML is never part of the page: only a sandboxed frame (no allow-scripts).
    assert "<script>window.parent" not in page.text and "Hello Ada</h1>" not in page.text
    assert f'sandbox referrerpolicy="no-referrer" src="/esp/outbox/{m.id}/html"' in page.text
    assert "allow-scripts" not in page.text and "srcdoc" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]

    frame = client.get(f"/esp/outbox/{m.id}/html")
    assert frame.text.strip() == HTML and frame.headers["content-type"].startswith("text/html")
    csp = frame.headers["content-security-policy"]
    assert csp.startswith("default-src 'none';") and csp.endswith("; sandbox")
    assert "script-src" not in csp and "img-src data:;" in csp  # remote images blocked
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    loaded = client.get(f"/esp/outbox/{m.id}/html", params={"images": "1"})
    assert "img-src data: https: http:;" in loaded.headers["content-security-policy"]
    assert "; sandbox" in loaded.headers["content-security-policy"]
    with_images = client.get(f"/esp/outbox/{m.id}", params={"images": "1"})
    assert f'src="/esp/outbox/{m.id}/html?images=1"' in with_images.text

    raw = client.get(f"/esp/outbox/{m.id}/raw")
    assert raw.headers["content-disposition"] == f'attachment; filename="message-{m.id}.eml"'
    assert BytesParser(policy=policy.default).parsebytes(raw.content)["Subject"] == SUBJECT
    assert client.get("/esp/outbox/999999").status_code == 404


def test_the_cli_lists_and_shows_messages(
    settings: Settings, capture: OutboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(capture.port, campaign_message())
    monkeypatch.setenv("MAILSHOT_CONFIG", str(settings.data_dir / "none.toml"))
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_ESP_DATABASE_URL", settings.esp_db_url())
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["outbox", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert SUBJECT in listed.output and '"count": 1' in listed.output
    with session_of(settings) as s:
        [m] = outbox.list_page(s, cursor=None, limit=1)[0]
    shown = runner.invoke(cli_app, ["outbox", "show", str(m.id)])
    assert shown.exit_code == 0, shown.output
    assert f"Subject: {SUBJECT}" in shown.output and "our spring sale." in shown.output
    assert "DKIM: d=example.com s=mailshot" in shown.output
    assert "\\n" not in shown.output  # the text part's lines are lines, not escapes
    source = runner.invoke(cli_app, ["outbox", "show", str(m.id), "--raw"])
    assert source.exit_code == 0, source.output
    lines = source.output.splitlines()
    assert any(line.startswith("Message-ID: ") for line in lines)
    assert "\\r\\n" not in source.output and "\\n" not in source.output
    missing = runner.invoke(cli_app, ["outbox", "show", "999999"])
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.output
