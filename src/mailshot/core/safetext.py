"""Text from data made safe for where it goes: on a terminal every character a terminal
acts on (controls, ANSI escapes, bidi marks) shown as an escape (:func:`plain`); in a CSV
file mailshot writes, a cell a spreadsheet would run as a formula neutralised
(:func:`csv_cell`)."""

from __future__ import annotations

import re

_BIDI = "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_UNSAFE_BUT_NEWLINES = re.compile(f"[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
#: What JSON does not escape itself (it escapes C0 controls); these can only be in strings.
_UNSAFE_IN_JSON = re.compile(f"[\\x7f-\\x9f{_BIDI}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as text in which every character a terminal acts on is an escape; with
    ``keep_newlines`` line breaks stay (a traceback's lines)."""
    text = str(value)
    pattern = _UNSAFE_BUT_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_visible, text) if pattern.search(text) else text


def json_safe(text: str) -> str:
    """JSON text with every character a terminal acts on as a ``\\u`` escape (still the
    same JSON)."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: How a cell starts that a spreadsheet reads as a formula (OWASP's list, with the
#: full-width forms some spreadsheets also accept).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> object:
    """A value for a cell of a CSV file people open in a spreadsheet: text that a
    spreadsheet would take for a formula (``=HYPERLINK(...)``, ``+1-2``, ``@SUM``) gets a
    leading ``'``, so it is shown as the text it is; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
