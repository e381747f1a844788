"""The NUL scanner of the HTTP edge finds a JSON ``\\u0000`` escape (after an odd run of
backslashes) wherever the chunks of a body split it, and only then."""

from __future__ import annotations

import pytest

from mailshot.core.web.edge import NulScanner


@pytest.mark.parametrize(
    ("chunks", "found"),
    [
        ([b'{"a": "x\\u0000"}'], True),
        ([b'{"a": "x\\\\u0000"}'], False),  # an escaped backslash, then text
        ([b'{"a": "x\\\\\\u0000"}'], True),  # an escaped backslash, then the escape
        ([b'{"a": "x\\u0', b'000"}'], True),  # split by the chunk boundary
        ([b'{"a": "x\\', b"u0000", b'"}'], True),
        ([b'{"a": "x\\\\', b'u0000"}'], False),
        ([b'{"a": "' + b"\\" * 9, b'u0000"}'], True),
        ([b'{"a": "' + b"\\" * 10, b'u0000"}'], False),
        ([b'{"a": "u0000"}'], False),
    ],
)
def test_the_scanner_finds_json_escapes_across_chunks(chunks: list[bytes], found: bool) -> None:
    scanner = NulScanner(b"u0000", escaped=True)
    assert any([scanner.feed(c) for c in chunks]) is found
