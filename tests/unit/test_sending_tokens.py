"""Signed tracking and unsubscribe tokens, VERP addresses and tags: round trips, and every
forged or altered value refused."""

from __future__ import annotations

import base64
import hmac

from hypothesis import given
from hypothesis import strategies as st

from mailshot.esp.sending import tokens
from mailshot.esp.sending.tokens import TokenFields, TokenKind

SECRET = b"a-secret-of-thirty-two-bytes-...."
OTHER = b"another-secret-of-32-bytes-......"
ids = st.integers(min_value=0, max_value=2**63 - 1)


@given(send=ids, recipient=ids, link=st.integers(min_value=0, max_value=10_000))
def test_click_tokens_verify_to_their_fields(send: int, recipient: int, link: int) -> None:
    token = tokens.sign_click(SECRET, send, recipient, link)
    assert tokens.verify(token, SECRET) == TokenFields(TokenKind.CLICK, send, recipient, link)
    assert tokens.verify(token, SECRET, TokenKind.CLICK) is not None
    assert tokens.verify(token, SECRET, TokenKind.OPEN) is None
    assert tokens.verify(token, OTHER) is None
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)


def test_open_and_unsubscribe_tokens_are_short_and_distinct() -> None:
    opened = tokens.sign_open(SECRET, 42, 1001)
    unsubscribe = tokens.sign_unsubscribe(SECRET, 42, 1001)
    assert opened != unsubscribe
    assert len(opened) <= 24 and len(tokens.sign_click(SECRET, 2**40, 2**40, 99)) <= 32
    assert tokens.verify(opened, SECRET) == TokenFields(TokenKind.OPEN, 42, 1001)
    assert tokens.verify(unsubscribe, SECRET, TokenKind.UNSUBSCRIBE) == TokenFields(
        TokenKind.UNSUBSCRIBE, 42, 1001
    )


def test_a_rotated_secret_still_verifies() -> None:
    token = tokens.sign_open(SECRET, 1, 2)
    assert tokens.verify(token, [OTHER, SECRET]) == TokenFields(TokenKind.OPEN, 1, 2)
    assert tokens.verify(token, [OTHER]) is None


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_every_altered_byte_is_refused() -> None:
    token = tokens.sign_click(SECRET, 42, 1001, 3)
    raw = _raw(token)
    for i in range(len(raw)):
        for flip in (0x01, 0x80):
            altered = bytearray(raw)
            altered[i] ^= flip
            assert tokens.verify(_token(bytes(altered)), SECRET) is None


def test_a_token_with_another_link_index_is_refused() -> None:
    # the same MAC on another link's payload: the index is covered by the MAC
    raw = _raw(tokens.sign_click(SECRET, 42, 1001, 3))
    payload, mac = raw[:-10], raw[-10:]
    assert tokens.verify(_token(payload[:-1] + bytes([4]) + mac), SECRET) is None
    # a click token turned into an unsubscribe token keeps a MAC that does not fit
    kind_changed = bytes([(payload[0] & 0xF0) | TokenKind.UNSUBSCRIBE]) + payload[1:-1]
    assert tokens.verify(_token(kind_changed + mac), SECRET) is None


def test_a_token_signed_with_the_right_key_but_made_here_verifies() -> None:
    # guards the test above: a payload MACed with the real derived key is accepted
    key = hmac.digest(SECRET, b"mailshot.sending.token.v1", "sha256")
    payload = bytes([0x10 | TokenKind.OPEN, 5, 6])
    mac = hmac.digest(key, payload, "sha256")[:10]
    assert tokens.verify(_token(payload + mac), SECRET) == TokenFields(TokenKind.OPEN, 5, 6)


def test_malformed_tokens_are_refused() -> None:
    for bad in ["", "!!!!", "a" * 200, "é", "AAAA", "A" * 20, tokens.sign_open(SECRET, 1, 2)[:-1]]:
        assert tokens.verify(bad, SECRET) is None


@given(send=ids, recipient=ids)
def test_verp_round_trip(send: int, recipient: int) -> None:
    address = tokens.verp_address(SECRET, send, recipient, "bounce.example.com")
    assert address.startswith(f"b+{send}-{recipient}-")
    assert len(address.partition("@")[0]) <= 64
    parsed = tokens.parse_verp(address, SECRET)
    assert parsed is not None and (parsed.kind, parsed.send_id, parsed.recipient_id) == (
        "b",
        send,
        recipient,
    )
    assert tokens.parse_verp(address.upper(), SECRET) == parsed  # MTAs may change case
    assert tokens.parse_verp(f"<{address}>", SECRET) == parsed


def test_forged_verp_addresses_are_refused() -> None:
    address = tokens.verp_address(SECRET, 42, 1001, "bounce.example.com")
    local, _, domain = address.partition("@")
    sig = local.rsplit("-", 1)[1]
    assert tokens.parse_verp(f"b+42-1002-{sig}@{domain}", SECRET) is None
    assert tokens.parse_verp(f"b+43-1001-{sig}@{domain}", SECRET) is None
    assert tokens.parse_verp(f"u+42-1001-{sig}@{domain}", SECRET) is None  # another kind
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert tokens.parse_verp(f"b+42-1001-{flipped}@{domain}", SECRET) is None
    assert tokens.parse_verp(address, OTHER) is None
    assert tokens.parse_verp("someone@example.com", SECRET) is None
    assert tokens.parse_verp("b+42-1001", SECRET) is None


def test_tags_of_one_recipient_match_their_single_forms() -> None:
    signer = tokens.Signer(SECRET)
    tags = signer.tags(42, 1001)
    for kind in "buf":
        assert tags[kind] == signer.tag(kind, 42, 1001)
        parsed = tokens.parse_tag(tags[kind], SECRET)
        assert parsed is not None and parsed.kind == kind
    assert tags["id"] == signer.message_id_sig(42, 1001)
