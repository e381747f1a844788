"""The 7-bit wire form of a message: header fields (RFC 2047 encoded words, folding,
addresses) and quoted-printable bodies assembled from pieces encoded once.

A body is the sequence of strings a Jinja template yields: its static pieces are encoded
when the send is compiled (:class:`QPBody`), per-recipient values when rendered, and the
pieces are joined with a soft line break wherever a line would pass 76 characters, so no
line is ever re-encoded. Every line of the result is at most 76 octets, and the result
needs no change to be in DKIM's relaxed body form (no piece starts or ends with a literal
space, none holds a tab or two spaces in a row).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping

#: One encoded piece: its bytes (CRLF line ends), the lengths of its first and last lines
#: without the line end, and whether it holds a line end.
Piece = tuple[bytes, int, int, bool]

_CONTENT_MAX = 75  # characters of a QP line before its soft break '='
_SAFE = frozenset(range(33, 127)) - {ord("=")}
_HEX = [f"={b:02X}".encode() for b in range(256)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_WORD_BYTES = 45  # UTF-8 bytes per encoded word: 60 base64 characters, 72 in all
FOLD_AT = 78


class AddressError(ValueError):
    """An address that cannot be written in a 7-bit message (or is not an address)."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{message}: {address!r}")
        self.address = address
        self.message = message


def encode_qp(text: str) -> Piece:
    """Quoted-printable encoding of ``text`` (newlines become CRLF line ends). Tabs, a
    space after a space and a space ending the text or a line are encoded, so the result
    is already in DKIM's relaxed body form (no run of whitespace, none at a line's end)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    lines: list[bytes] = []
    for raw in data.split(b"\n"):
        line = bytearray()
        out: list[bytes] = []
        end = len(raw)
        for i, byte in enumerate(raw):
            if byte in _SAFE or (byte == 32 and i != end - 1 and line[-1:] != b" "):
                token = bytes((byte,))
            else:
                token = _HEX[byte]
            if len(line) + len(token) > _CONTENT_MAX:
                out.append(bytes(line) + b"=")
                line = bytearray()
            line += token
        out.append(bytes(line))
        lines.append(b"\r\n".join(out))
    encoded = b"\r\n".join(lines)
    first = encoded.find(b"\r\n")
    if first < 0:
        return encoded, len(encoded), len(encoded), False
    return encoded, first, len(encoded) - encoded.rfind(b"\r\n") - 2, True


def encode_value(value: str) -> Piece:
    """:func:`encode_qp` with a fast path for short printable ASCII (links, most names)."""
    if is_plain(value):
        return value.encode("ascii"), len(value), len(value), False
    return encode_qp(value)


_NONE: Mapping[str, Piece] = {}


def is_plain(value: str) -> bool:
    """Whether ``value`` is its own quoted-printable form on one line: short printable
    ASCII without '=', two spaces in a row or a space at its end."""
    return (
        len(value) <= _CONTENT_MAX
        and value.isascii()
        and value.isprintable()
        and "=" not in value
        and not value.endswith(" ")
        and "  " not in value
    )


def plain(value: str) -> Piece:
    """The piece of a value known to pass :func:`is_plain`, without checking it again."""
    return value.encode("ascii"), len(value), len(value), False


class QPBody:
    """Encodes the strings a template yields, its static strings encoded in advance."""

    __slots__ = ("_cache",)

    def __init__(self, static: Iterable[str]) -> None:
        self._cache: dict[str, Piece] = {s: encode_qp(s) for s in static if s}

    def join(self, chunks: Iterable[str], known: Mapping[str, Piece] = _NONE) -> bytes:
        """The encoded body of ``chunks``; ``known``: values encoded beforehand (the
        links made for this recipient, which each part yields)."""
        out: list[bytes] = []
        append = out.append
        cache_get = self._cache.get
        known_get = known.get
        col = 0
        for chunk in chunks:
            piece = cache_get(chunk)
            if piece is None:
                if not chunk:
                    continue
                piece = known_get(chunk) or encode_value(chunk)
            data, first, last, multi = piece
            if col and col + first > _CONTENT_MAX:
                append(b"=\r\n")
                col = 0
            append(data)
            col = last if multi else col + first
        return b"".join(out)


def clean_text(value: object) -> str:
    """Header text: control characters and line breaks become spaces, ends stripped."""
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = _CONTROL.sub(" ", text)
    return text.strip()


def clean_phrase(value: object) -> str:
    """A display name: :func:`clean_text` with each run of whitespace made one space (a
    phrase's words are separated by whitespace, which readers show as one space)."""
    return " ".join(clean_text(value).split())


def encoded_words(text: str, first_line_used: int = 0) -> list[str]:
    """``text`` as RFC 2047 B encoded words (UTF-8), none splitting a character, each
    on a line of at most 76 characters: the first after ``first_line_used`` characters
    (``Subject: ``), the others after one space of folding."""
    limit = _word_bytes(76 - first_line_used)
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if chunk and len(chunk) + len(data) > limit:
            words.append(_word(chunk))
            chunk = bytearray()
            limit = _WORD_BYTES
        chunk += data
    if chunk:
        words.append(_word(chunk))
    return words


def _word_bytes(room: int) -> int:
    """UTF-8 bytes whose encoded word fits ``room`` characters (at most 75 of them)."""
    return max(3, (min(room, 75) - 12) // 4 * 3)


def _word(data: bytearray) -> str:
    return "=?utf-8?b?" + base64.b64encode(bytes(data)).decode("ascii") + "?="


def _needs_words(text: str) -> bool:
    return not text.isascii() or "=?" in text or any(len(w) > 900 for w in text.split(" "))


def _fold(name: str, words: list[str]) -> bytes:
    """``name: words`` folded before a word when a line would pass 78 characters."""
    head = line = name + ":"
    lines: list[str] = []
    for word in words:
        if len(line) + 1 + len(word) > FOLD_AT and line != head:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def unstructured(name: str, value: object) -> bytes:
    """A complete unstructured header field (such as Subject), CRLF-terminated."""
    text = clean_text(value)
    if not _needs_words(text):
        # fold at spaces: the continuation line starts with the space it folded at
        return _fold_spaces(name, text)
    return _fold(name, encoded_words(text, len(name) + 2))


def _fold_spaces(name: str, text: str) -> bytes:
    head = name + ": "
    if len(head) + len(text) <= FOLD_AT:
        return (head + text + "\r\n").encode("ascii")
    parts = text.split(" ")
    lines: list[str] = []
    line = head + parts[0]
    for part in parts[1:]:
        if len(line) + 1 + len(part) > FOLD_AT and line.strip(" "):
            lines.append(line)
            line = " " + part
        else:
            line += " " + part
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def addr_spec(address: str) -> str:
    """The ASCII form of an address (IDNA domain); local parts must be ASCII."""
    value = address.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise AddressError(address, "not an email address")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise AddressError(address, "the domain cannot be written in ASCII") from None
    if not _DOMAIN.fullmatch(domain) or ".." in domain:
        raise AddressError(address, "not a valid domain")
    if not local.isascii():
        raise AddressError(address, "a non-ASCII local part needs SMTPUTF8")
    if not _ATEXT.fullmatch(local):
        if len(local) > 64 or not local.isprintable():
            raise AddressError(address, "not a valid local part")
        local = '"' + local.strip('"').replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}"


def address_field(name: str, display_name: object, address: str) -> bytes:
    """A From/To/Reply-To field: ``Name: "Display" <addr>``, encoded words if needed."""
    return mailbox_field(name, display_name, addr_spec(address))


def mailbox_field(name: str, display_name: object, spec: str) -> bytes:
    """:func:`address_field` for an address already through :func:`addr_spec`."""
    display = clean_phrase(display_name)
    if not display:
        return _fold(name, [spec])
    if _needs_words(display):
        return _fold(name, [*encoded_words(display, len(name) + 2), f"<{spec}>"])
    quoted = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _fold_spaces(name, f"{quoted} <{spec}>")


def words_field(name: str, words: list[str]) -> bytes:
    """A field of ASCII words, folded between them (such as List-Unsubscribe)."""
    return _fold(name, words)
