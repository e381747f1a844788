"""A rendered message parsed back with the ``email`` package: every header, the MIME
structure, merged and escaped bodies, tracking links and their tokens, the unsubscribe
pair, Message-ID stability and the wire form (CRLF, 7-bit, line lengths)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from mailshot.esp.sending import tokens
from mailshot.esp.sending.compose import compile_message
from mailshot.esp.sending.merge import TemplateProblem
from mailshot.esp.sending.mime import AddressError
from mailshot.esp.sending.tokens import TokenFields, TokenKind
from tests.support.sending_samples import (
    BASE,
    SECRET,
    check_wire_form,
    content,
    context,
    parse,
    part,
    recipient,
)

NOW = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)
CLICK = re.compile(re.escape(BASE) + r"/t/c/([A-Za-z0-9_-]+)")


def test_headers_are_complete_and_parse_back() -> None:
    compiled = compile_message(content(), context())
    rendered = compiled.render(recipient(), now=NOW)
    check_wire_form(rendered.data)
    message = parse(rendered.data)
    assert message["Date"] == "Sun, 01 Mar 2026 09:30:15 +0000"
    assert message["Date"].datetime == NOW
    assert message["From"].addresses[0].display_name == "Hill & Dale"
    assert message["From"].addresses[0].addr_spec == "news@shop.example.com"
    assert message["Reply-To"].addresses[0].addr_spec == "help@shop.example.com"
    assert message["To"].addresses[0].display_name == "Ann Smith"
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    assert message["Subject"] == "News for Ann"
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == rendered.message_id
    assert re.fullmatch(r"<42\.1001\.[0-9a-f]{10}@esp\.example\.com>", rendered.message_id)
    assert message["Feedback-ID"] == "42:mailshot"
    tag = tokens.parse_tag(str(message["X-Mailshot-Recipient"]), SECRET)
    assert tag is not None and (tag.kind, tag.send_id, tag.recipient_id) == ("f", 42, 1001)
    assert rendered.rcpt_to == "ann@example.org"
    for name in ("Date", "From", "To", "Subject", "Message-ID", "List-Unsubscribe"):
        assert len(message.get_all(name) or []) == 1


def test_envelope_from_is_a_verp_address_of_this_send_and_recipient() -> None:
    rendered = compile_message(content(), context()).render(recipient())
    assert rendered.envelope_from.endswith("@bounce.example.com")
    parsed = tokens.parse_verp(rendered.envelope_from, SECRET)
    assert parsed is not None and (parsed.send_id, parsed.recipient_id) == (42, 1001)
    assert parsed.kind == "b"


def test_multipart_alternative_has_text_then_html() -> None:
    message = parse(compile_message(content(), context()).render(recipient()).data)
    assert message.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    for item in message.iter_parts():
        assert item.get_content_charset() == "utf-8"
        assert item["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.defects == []
    assert all(p.defects == [] for p in message.walk())


def test_rfc_8058_one_click_pair_and_a_personal_unsubscribe_link() -> None:
    rendered = compile_message(content(), context()).render(recipient())
    message = parse(rendered.data)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    value = str(message["List-Unsubscribe"])
    match = re.fullmatch(re.escape(f"<{BASE}/u/") + r"([A-Za-z0-9_-]+)>", value)
    assert match is not None
    assert tokens.verify(match.group(1), SECRET) == TokenFields(TokenKind.UNSUBSCRIBE, 42, 1001)
    url = value.strip("<>")
    # no {{ unsubscribe_url }} in the templates: a footer carries it in both parts
    assert f'<a href="{url}"' in part(message, "text/html")
    assert f"Unsubscribe: {url}" in part(message, "text/plain")
    assert "member of Newsletter" in part(message, "text/plain")


def test_a_mailto_unsubscribe_can_be_offered_too() -> None:
    rendered = compile_message(content(), context(unsubscribe_mailto=True)).render(recipient())
    value = str(parse(rendered.data)["List-Unsubscribe"])
    https, mailto = (v.strip() for v in value.split(","))
    assert https.startswith(f"<{BASE}/u/")
    address = mailto.removeprefix("<mailto:").split("?")[0]
    parsed = tokens.parse_verp(address, SECRET)
    assert parsed is not None and (parsed.kind, parsed.recipient_id) == ("u", 1001)


def test_the_templates_own_unsubscribe_link_replaces_the_footer() -> None:
    html = '<html><body><p>Bye <a href="{{ unsubscribe_url }}">leave</a></p></body></html>'
    text = "Leave: {{ unsubscribe_url }}\n"
    message = parse(
        compile_message(content(html=html, text=text), context()).render(recipient()).data
    )
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert part(message, "text/plain") == f"Leave: {url}\n"
    assert part(message, "text/html").count(url) == 1
    assert "member of" not in part(message, "text/html")


def test_links_are_numbered_rewritten_and_their_tokens_verify() -> None:
    compiled = compile_message(content(), context())
    assert compiled.links == [
        "https://shop.example.com/a?x=1&y=2",
        "https://shop.example.com/b",
        "https://shop.example.com/a?x=1&y=2",
        "https://shop.example.com/c",
    ]
    message = parse(compiled.render(recipient(recipient_id=9)).data)
    html, text = part(message, "text/html"), part(message, "text/plain")
    html_tokens = CLICK.findall(html)
    assert [tokens.verify(t, SECRET) for t in html_tokens] == [
        TokenFields(TokenKind.CLICK, 42, 9, i) for i in (0, 1, 2)
    ]
    # text URLs reuse an HTML link's index, or get the next; punctuation stays outside
    text_tokens = CLICK.findall(text)
    assert [tokens.verify(t, SECRET).link_index for t in text_tokens] == [1, 3]  # type: ignore[union-attr]
    assert re.search(r"/t/c/[A-Za-z0-9_-]+\. Or ", text)
    assert re.search(r"/t/c/[A-Za-z0-9_-]+ \(new\)", text)
    # not rewritten: mailto, tel, anchors, relative, merge expressions, opted out
    for kept in (
        'href="mailto:help@shop.example.com"',
        'href="tel:+441234"',
        'href="#top"',
        'href="/relative"',
        'href="https://shop.example.com/p/X1"',
        'href="https://shop.example.com/private"',
    ):
        assert kept in html


def test_another_recipient_gets_other_tokens_for_the_same_links() -> None:
    compiled = compile_message(content(), context())
    first = CLICK.findall(part(parse(compiled.render(recipient(recipient_id=1)).data), "text/html"))
    second = CLICK.findall(
        part(parse(compiled.render(recipient(recipient_id=2)).data), "text/html")
    )
    assert set(first).isdisjoint(second)
    assert [tokens.verify(t, SECRET).recipient_id for t in second] == [2, 2, 2]  # type: ignore[union-attr]


def test_the_open_pixel_is_placed_before_the_body_end() -> None:
    html = part(parse(compile_message(content(), context()).render(recipient()).data), "text/html")
    match = re.search(re.escape(BASE) + r"/t/o/([A-Za-z0-9_-]+)\.gif", html)
    assert match is not None
    assert tokens.verify(match.group(1), SECRET) == TokenFields(TokenKind.OPEN, 42, 1001)
    assert html.index(match.group(0)) < html.index("</body>")
    assert html.rstrip().endswith("</html>")


def test_tracking_off_leaves_links_and_adds_no_pixel() -> None:
    compiled = compile_message(content(), context(track_opens=False, track_clicks=False))
    assert compiled.links == []
    html = part(parse(compiled.render(recipient()).data), "text/html")
    assert "/t/o/" not in html and "/t/c/" not in html
    assert 'href="https://shop.example.com/a?x=1&amp;y=2"' in html


def test_message_id_is_stable_per_send_and_recipient() -> None:
    one = compile_message(content(), context()).render(recipient(), now=NOW)
    again = compile_message(content(subject="Other"), context()).render(recipient())
    assert one.message_id == again.message_id
    other_recipient = compile_message(content(), context()).render(recipient(recipient_id=1002))
    other_send = compile_message(content(), context(send_id=43)).render(recipient())
    assert len({one.message_id, other_recipient.message_id, other_send.message_id}) == 3


def test_the_same_inputs_render_the_same_bytes() -> None:
    compiled = compile_message(content(), context())
    assert compiled.render(recipient(), now=NOW).data == compiled.render(recipient(), now=NOW).data


def test_non_ascii_subject_and_from_are_encoded_words() -> None:
    compiled = compile_message(
        content(subject="Grüße, {{ first_name }}", from_name="Zoë's Bäckerei"), context()
    )
    rendered = compiled.render(recipient(first_name="Zoë", last_name="Ünal"))
    check_wire_form(rendered.data)
    raw_head = rendered.data.split(b"\r\n\r\n")[0]
    assert b"Subject: =?utf-8?b?" in raw_head and b"From: =?utf-8?b?" in raw_head
    message = parse(rendered.data)
    assert message["Subject"] == "Grüße, Zoë"
    assert message["From"].addresses[0].display_name == "Zoë's Bäckerei"
    assert message["To"].addresses[0].display_name == "Zoë Ünal"


def test_a_long_subject_is_folded_and_reads_back_whole() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    compiled = compile_message(content(subject=words + " {{ first_name }}"), context())
    rendered = compiled.render(recipient())
    check_wire_form(rendered.data)
    head = rendered.data.split(b"\r\n\r\n")[0].decode()
    assert all(len(line) <= 78 for line in head.split("\r\n") if not line.startswith("DKIM"))
    assert parse(rendered.data)["Subject"] == words + " Ann"


def test_long_lines_and_non_ascii_bodies_are_quoted_printable() -> None:
    long_line = "é" * 3000 + " " + "x" * 2000 + " = end  "
    compiled = compile_message(
        content(html=None, text=long_line + "\n{{ first_name }}\n"), context()
    )
    rendered = compiled.render(recipient(first_name="Zoë\nSecond line "))
    check_wire_form(rendered.data)
    text = part(parse(rendered.data), "text/plain")
    assert text.startswith(long_line + "\nZoë\nSecond line \n")


def test_text_only_content_is_text_plain_alone() -> None:
    compiled = compile_message(content(html=None), context())
    message = parse(compiled.render(recipient()).data)
    assert message.get_content_type() == "text/plain"
    assert not message.is_multipart()
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("Hello Ann,\n")
    assert "/t/o/" not in body  # no pixel without HTML


def test_html_only_content_gets_a_derived_text_part() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>T</title></head><body>"
        "<h1>Hi {{ first_name }}</h1><p>Read <a href='https://x.example.com/r'>the story</a>."
        "</p><ul><li>One</li><li>Two &amp; three</li></ul><script>var a = 1;</script>"
        "</body></html>"
    )
    compiled = compile_message(content(html=html, text=None), context())
    assert compiled.links == ["https://x.example.com/r"]
    message = parse(compiled.render(recipient()).data)
    text = part(message, "text/plain")
    assert text.startswith("Hi Ann\n\nRead the story (")
    token = CLICK.search(text)
    assert token is not None and tokens.verify(token.group(1), SECRET).link_index == 0  # type: ignore[union-attr]
    assert "- One\n- Two & three" in text
    assert "color:red" not in text and "var a" not in text
    assert "Unsubscribe: " in text


def test_a_recipient_address_that_cannot_be_sent_is_refused() -> None:
    compiled = compile_message(content(), context())
    with pytest.raises(AddressError):
        compiled.render(recipient(email="zoë@example.org"))
    with pytest.raises(AddressError):
        compiled.render(recipient(email="not an address"))
    rendered = compiled.render(recipient(email="ann@bücher.example"))
    assert rendered.rcpt_to == "ann@xn--bcher-kva.example"
    check_wire_form(rendered.data)


def test_a_template_failing_on_one_recipients_values_names_field_and_line() -> None:
    source = "Hi\n{% if custom.n %}{{ custom.n + 1 }}{% endif %}\n"
    compiled = compile_message(content(html=None, text=source), context())
    assert compiled.render(recipient(custom={"n": 2})).data  # numbers add up
    with pytest.raises(TemplateProblem) as raised:
        compiled.render(recipient(custom={"n": "two"}))
    assert (raised.value.field, raised.value.line) == ("text", 2)


def test_bad_sender_or_domains_are_refused_at_compile_time() -> None:
    with pytest.raises(AddressError):
        compile_message(content(from_address="news at shop"), context())
    with pytest.raises(AddressError):
        compile_message(content(), context(bounce_domain="bad domain"))


def test_a_long_tracking_base_still_gives_valid_lines() -> None:
    base = "https://esp.example.com/" + "very-long-path-segment/" * 4 + "esp"
    compiled = compile_message(content(), context(tracking_base_url=base))
    rendered = compiled.render(recipient())
    check_wire_form(rendered.data)
    html = part(parse(rendered.data), "text/html")
    token = re.search(re.escape(base) + r"/t/c/([A-Za-z0-9_-]+)", html)
    assert token is not None
    assert tokens.verify(token.group(1), SECRET) == TokenFields(TokenKind.CLICK, 42, 1001, 0)


def test_a_derived_text_part_keeps_opt_outs_and_mail_addresses() -> None:
    html = (
        "<p><a data-mailshot-notrack href='https://x.example.com/private'>Private</a>"
        " <a href='mailto:help@x.example.com'>Write</a>"
        " <a href='https://x.example.com/t'>Tracked</a></p>"
    )
    compiled = compile_message(content(html=html, text=None), context())
    assert compiled.links == ["https://x.example.com/t"]
    text = part(parse(compiled.render(recipient()).data), "text/plain")
    assert text.startswith(
        "Private (https://x.example.com/private) Write (help@x.example.com) Tracked ("
        + BASE
        + "/t/c/"
    )
