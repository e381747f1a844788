"""Signed identifiers carried by a sent message: tracking and unsubscribe tokens (in URLs),
tags (VERP Return-Path, the mailto unsubscribe address, the X-Mailshot-Recipient header) and
the stable Message-ID. Everything is keyed by the send's secret; nothing here stores state.

Token: ``base64url(kind byte | varint send | varint recipient [| varint link] | MAC)``,
MAC = the first 10 bytes of HMAC-SHA256 under a key derived from the secret. Tag:
``<letter>+<send>-<recipient>-<sig>`` in lower case (MTAs may change a local part's case),
sig = 16 hex digits of another derived HMAC. Both verify in constant time; a forged or
altered value verifies to None.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

MAC_BYTES = 10
TAG_SIG_BYTES = 8
#: The longest token accepted by :func:`verify` (tokens made here are about 25 characters).
MAX_TOKEN_CHARS = 80
_VERSION = 0x10
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class TokenKind(IntEnum):
    CLICK = 1
    OPEN = 2
    UNSUBSCRIBE = 3


@dataclass(frozen=True, slots=True)
class TokenFields:
    kind: TokenKind
    send_id: int
    recipient_id: int
    #: The link's index in ``CompiledMessage.links`` (click tokens only).
    link_index: int | None = None


@dataclass(frozen=True, slots=True)
class TagFields:
    #: 'b' bounce address (Return-Path), 'u' mailto unsubscribe, 'f' feedback header.
    kind: str
    send_id: int
    recipient_id: int


def _derive(secret: bytes, purpose: bytes) -> bytes:
    if not secret:
        raise ValueError("the signing secret is empty")
    return hmac.digest(secret, b"mailshot.sending." + purpose, "sha256")


def varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("ids are not negative")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varints(data: bytes) -> list[int] | None:
    values: list[int] = []
    n = shift = 0
    for byte in data:
        n |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                return None
        else:
            values.append(n)
            n = shift = 0
    return values if shift == 0 else None


class _Hmac:
    """HMAC-SHA256 under one key, its padded inner and outer keys hashed once (RFC 2104;
    the same output as ``hmac.digest``, without setting the key up on every call)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        padded = key.ljust(64, b"\0")  # keys here are 32-byte digests
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class Signer:
    """The keys of one secret, derived once; signs tokens, tags and Message-IDs fast."""

    __slots__ = ("_tag_mac", "_token_mac")

    def __init__(self, secret: bytes) -> None:
        self._token_mac = _Hmac(_derive(secret, b"token.v1"))
        self._tag_mac = _Hmac(_derive(secret, b"tag.v1"))

    def token_prefix(self, kind: TokenKind, send_id: int, recipient_id: int) -> bytes:
        return bytes((_VERSION | kind,)) + varint(send_id) + varint(recipient_id)

    def seal(self, payload: bytes) -> str:
        """The token of ``payload`` (a prefix, plus a link's varint for a click)."""
        mac = self._token_mac(payload)[:MAC_BYTES]
        encoded = binascii.b2a_base64(payload + mac, newline=False).translate(_URLSAFE)
        return encoded.rstrip(b"=").decode("ascii")

    def token(
        self, kind: TokenKind, send_id: int, recipient_id: int, link_index: int | None = None
    ) -> str:
        payload = self.token_prefix(kind, send_id, recipient_id)
        if kind is TokenKind.CLICK:
            if link_index is None:
                raise ValueError("a click token needs a link index")
            payload += varint(link_index)
        elif link_index is not None:
            raise ValueError("only click tokens carry a link index")
        return self.seal(payload)

    def verify(self, token: str) -> TokenFields | None:
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(payload) < 3:
            return None
        expected = self._token_mac(payload)[:MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        head, ints = payload[0], _read_varints(payload[1:])
        if head & 0xF0 != _VERSION or ints is None:
            return None
        try:
            kind = TokenKind(head & 0x0F)
        except ValueError:
            return None
        if kind is TokenKind.CLICK and len(ints) == 3:
            return TokenFields(kind, ints[0], ints[1], ints[2])
        if kind is not TokenKind.CLICK and len(ints) == 2:
            return TokenFields(kind, ints[0], ints[1])
        return None

    def _ids_mac(self, send_id: int, recipient_id: int) -> bytes:
        return self._tag_mac(b"%d:%d" % (send_id, recipient_id))

    def tag(self, kind: str, send_id: int, recipient_id: int) -> str:
        mac = self._ids_mac(send_id, recipient_id)
        return f"{kind}+{send_id}-{recipient_id}-{_tag_sig(mac, kind)}"

    def tags(self, send_id: int, recipient_id: int) -> dict[str, str]:
        """Every tag of one recipient (one MAC): ``{"b": ..., "u": ..., "f": ...}``, and
        the Message-ID's signature under ``"id"``."""
        mac = self._ids_mac(send_id, recipient_id)
        head = f"+{send_id}-{recipient_id}-"
        found = {kind: kind + head + _tag_sig(mac, kind) for kind in _TAG_SLICES}
        found["id"] = mac[24:29].hex()
        return found

    def parse_tag(self, text: str) -> TagFields | None:
        match = _TAG.fullmatch(text.strip().lower())
        if match is None:
            return None
        kind, send, recipient, sig = match.groups()
        send_id, recipient_id = int(send), int(recipient)
        expected = _tag_sig(self._ids_mac(send_id, recipient_id), kind)
        if not hmac.compare_digest(sig, expected):
            return None
        return TagFields(kind, send_id, recipient_id)

    def message_id_sig(self, send_id: int, recipient_id: int) -> str:
        return self._ids_mac(send_id, recipient_id)[24:29].hex()


#: Each kind of tag signs with its own 8 bytes of the recipient's MAC (independent slices
#: of one HMAC output, so one HMAC gives every tag; the Message-ID takes bytes 24-28).
_TAG_SLICES = {"b": 0, "u": 8, "f": 16}


def _tag_sig(mac: bytes, kind: str) -> str:
    at = _TAG_SLICES[kind]
    return mac[at : at + TAG_SIG_BYTES].hex()


_TAG = re.compile(r"([buf])\+(\d{1,19})-(\d{1,19})-([0-9a-f]{16})")


def _signers(secrets: bytes | Sequence[bytes]) -> list[Signer]:
    return [Signer(secrets)] if isinstance(secrets, bytes) else [Signer(s) for s in secrets]


def sign_click(secret: bytes, send_id: int, recipient_id: int, link_index: int) -> str:
    return Signer(secret).token(TokenKind.CLICK, send_id, recipient_id, link_index)


def sign_open(secret: bytes, send_id: int, recipient_id: int) -> str:
    return Signer(secret).token(TokenKind.OPEN, send_id, recipient_id)


def sign_unsubscribe(secret: bytes, send_id: int, recipient_id: int) -> str:
    return Signer(secret).token(TokenKind.UNSUBSCRIBE, send_id, recipient_id)


def verify(
    token: str, secrets: bytes | Sequence[bytes], kind: TokenKind | None = None
) -> TokenFields | None:
    """The fields of a token made with one of ``secrets`` (newest first, so a rotated
    secret still verifies), or None when it is forged, altered, malformed or of another
    ``kind``. An open pixel's path ends in ``.gif``: pass the token without it."""
    for signer in _signers(secrets):
        fields = signer.verify(token)
        if fields is not None:
            return fields if kind is None or fields.kind is kind else None
    return None


def verp_address(secret: bytes, send_id: int, recipient_id: int, bounce_domain: str) -> str:
    """The Return-Path of one recipient of one send: ``b+<send>-<recipient>-<sig>@domain``."""
    return f"{Signer(secret).tag('b', send_id, recipient_id)}@{bounce_domain}"


def parse_tag(text: str, secrets: bytes | Sequence[bytes]) -> TagFields | None:
    """The fields of a tag (``b+1-2-sig``, any case), or None if it is not a valid one."""
    for signer in _signers(secrets):
        fields = signer.parse_tag(text)
        if fields is not None:
            return fields
    return None


def parse_verp(address: str, secrets: bytes | Sequence[bytes]) -> TagFields | None:
    """Send and recipient of a bounce address (``b+...@domain``) or of the mailto
    unsubscribe address (``u+...@domain``); None for any other or a forged address."""
    local, at, _domain = address.strip().strip("<>").rpartition("@")
    return parse_tag(local, secrets) if at else None
