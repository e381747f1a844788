"""Encoding properties (Hypothesis): any names, subjects and body values give a 7-bit
message with CRLF lines of at most 998 octets that parses back to the same values."""

from __future__ import annotations

from email.header import decode_header
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailshot.esp.sending import mime
from mailshot.esp.sending.compose import compile_message
from mailshot.esp.sending.wire import wire_data
from tests.support.sending_samples import check_wire_form, content, context, parse, part, recipient

# any character but surrogates (not encodable) and NUL-like controls are covered by
# clean_text's replacement; names are read back cleaned (see mime.clean_text)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=120)
ascii_words = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300)
COMPILED = compile_message(
    content(subject="{{ custom.subject }}", text="{{ custom.body }}|\n"),
    context(),
)


def _expected(value: str) -> str:
    return mime.clean_text(value)


def _expected_name(value: str) -> str:
    return mime.clean_phrase(value)


def _check_display_name(message: EmailMessage, name: str, field: str) -> None:
    """The display name reads back: by RFC 2047 (whitespace between adjacent encoded words
    is not part of the text) always, and by the ``email`` package's parser too unless it
    spans several encoded words (that parser keeps a space between the encoded words of
    a phrase, even in messages the ``email`` package wrote itself)."""
    expected = _expected_name(name)
    display = message[field].addresses[0].display_name
    raw = next(v for k, v in message.raw_items() if k.lower() == field.lower())
    phrase = str(raw).replace("\r\n", "").rsplit("<", 1)[0].strip()
    if phrase.count("=?") <= 1:
        assert display == expected
    if "=?" in phrase:
        decoded = "".join(
            part.decode(charset or "ascii") if isinstance(part, bytes) else part
            for part, charset in decode_header(phrase)
        )
        assert decoded == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(first=text | ascii_words, last=text, subject=text | ascii_words)
def test_names_and_subjects_read_back(first: str, last: str, subject: str) -> None:
    rendered = COMPILED.render(
        recipient(first_name=first, last_name=last, custom={"subject": subject, "body": ""})
    )
    check_wire_form(rendered.data)
    message = parse(rendered.data)
    assert message["Subject"] == _expected(subject)
    _check_display_name(message, f"{first} {last}", "To")
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    assert not message.defects


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=st.text(st.characters(exclude_categories=("Cs",)), max_size=400))
def test_body_values_read_back(body: str) -> None:
    rendered = COMPILED.render(recipient(custom={"subject": "s", "body": body}))
    check_wire_form(rendered.data)
    if rendered.wire_ready:  # the engine sends it as it is: it must need no change
        assert wire_data(rendered.data) == rendered.data + b".\r\n"
    decoded = part(parse(rendered.data), "text/plain")
    expected = body.replace("\r\n", "\n").replace("\r", "\n")
    assert decoded.startswith(expected + "|\n")


@settings(max_examples=200, deadline=None)
@given(name=text | ascii_words)
def test_from_display_names_read_back(name: str) -> None:
    field = mime.address_field("From", name, "news@shop.example.com")
    check_wire_form(field + b"\r\n")
    message = parse(field + b"\r\nbody\r\n")
    _check_display_name(message, name, "From")
    assert message["From"].addresses[0].addr_spec == "news@shop.example.com"


@given(body=st.sampled_from(["\n.", ".x\n..y", "a\n.\n", "\r\n.end"]))
def test_a_line_starting_with_a_dot_is_left_to_the_engine(body: str) -> None:
    rendered = COMPILED.render(recipient(custom={"subject": "s", "body": body}))
    assert not rendered.wire_ready
    assert b"\r\n.." in wire_data(rendered.data)  # dot-stuffed by the engine instead
    plain = COMPILED.render(recipient(custom={"subject": "s", "body": "no dots here"}))
    assert plain.wire_ready
    assert wire_data(plain.data) == plain.data + b".\r\n"


def test_qp_pieces_join_within_76_columns() -> None:
    body = mime.QPBody(["x" * 75, "y" * 200 + "\n" + "z" * 74])
    joined = body.join(["a" * 40, "x" * 75, "é" * 30, "y" * 200 + "\n" + "z" * 74, "b   ", "c"])
    assert all(len(line) <= 76 for line in joined.split(b"\r\n"))
    import quopri

    assert quopri.decodestring(joined.replace(b"\r\n", b"\n")).decode() == (
        "a" * 40 + "x" * 75 + "é" * 30 + "y" * 200 + "\n" + "z" * 74 + "b   c"
    )
