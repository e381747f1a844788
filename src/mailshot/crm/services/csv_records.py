"""A CSV file read as records, strictly, without losing a line: each line decoded on its
own (one badly encoded line is reported and skipped instead of stopping the file), and
each record parsed with the lines it spans. A record may span several lines only inside a
quoted value, for at most :data:`MAX_RECORD_LINES` lines, and never into a line that is a
row of its own; a line that cannot be parsed (not valid CSV, or a quote that does not
close so) is reported with its number and costs that line only: reading resumes on the
next line, so a broken quote never swallows the lines after it.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable
from typing import IO, NamedTuple

_BOM = b"\xef\xbb\xbf"


class Unreadable(NamedTuple):
    """A line that is no record: its number, a reason code and a sentence."""

    line: int
    reason: str
    message: str


#: A line of the file: its number, and its text or (None and) why it does not decode.
_Line = tuple[int, str | None, str | None]
#: The most physical lines one record may span: a quoted value may hold line breaks (an
#: address, a note), but a quote not closed within this many lines is a broken line.
MAX_RECORD_LINES = 20


class Lines:
    """The lines of a binary file decoded as UTF-8 (a leading BOM dropped), numbered from 1:
    each ``(number, text, None)``, or ``(number, None, reason)`` for a line that does not
    decode. Lines given back (:meth:`give_back`) come again, in order, before the rest."""

    def __init__(self, fh: IO[bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        self._fh = fh
        self._on_bytes = on_bytes
        self._back: deque[_Line] = deque()
        #: The number of the last line read from the file.
        self.number = 0

    def next_line(self) -> _Line | None:
        if self._back:
            return self._back.popleft()
        raw = self._fh.readline()
        if not raw:
            return None
        self.number += 1
        if self._on_bytes is not None:
            self._on_bytes(len(raw))
        if self.number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if (nul := raw.find(b"\x00")) != -1:
            return self.number, None, f"the line holds a NUL character (at position {nul + 1})"
        try:
            return self.number, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            why = (
                f"the line is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                f"position {exc.start + 1})"
            )
            return self.number, None, why

    def give_back(self, lines: list[_Line]) -> None:
        self._back.extendleft(reversed(lines))


class _UnclosedQuoteError(Exception):
    """A quoted value spans more lines than it may: ``why`` says where it had to stop."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _row_of_its_own(text: str, width: int | None) -> bool:
    """Whether ``text`` is a whole record by itself: balanced quotes, and as many values
    as the header has columns."""
    if width is None or text.count('"') % 2:
        return False
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


class _Feed:
    """The lines the CSV parser reads for one record at a time (:attr:`taken`). A record
    may go on past its first line only inside a quoted value, and only for
    :data:`MAX_RECORD_LINES` lines, never into a line that does not decode nor into a line
    that is a record of its own (a quote left open on one line must not swallow the good
    lines after it). Lines that do not decode between records are kept in :attr:`bad`."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self.width: int | None = None
        self.taken: list[_Line] = []
        self.bad: list[tuple[int, str]] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        while True:
            line = self.lines.next_line()
            if line is None:
                raise StopIteration
            number, text, why = line
            if not self.taken:
                if text is None:
                    self.bad.append((number, why or ""))
                    continue
            elif len(self.taken) >= MAX_RECORD_LINES:
                self.lines.give_back([line])
                raise _UnclosedQuoteError(f"within {MAX_RECORD_LINES} lines")
            elif text is None:
                self.lines.give_back([line])
                raise _UnclosedQuoteError(f"before line {number}, which is not valid UTF-8")
            elif _row_of_its_own(text, self.width):
                self.lines.give_back([line])
                raise _UnclosedQuoteError(f"before line {number}, a row of its own")
            self.taken.append(line)
            assert text is not None
            return text


class RecordReader:
    """The records of a CSV file, parsed strictly, each with the lines it spans; a line
    that cannot be parsed costs that line only: it is reported, and reading resumes on the
    next line (so a broken quote never swallows the lines after it)."""

    def __init__(self, fh: IO[bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        self.lines = Lines(fh, on_bytes)
        self._feed = _Feed(self.lines)
        self._csv = csv.reader(self._feed, strict=True)

    def set_width(self, width: int) -> None:
        """The number of columns (the header's), to tell a row of its own."""
        self._feed.width = width

    def bad_lines(self) -> list[tuple[int, str]]:
        """The lines that did not decode since the last call."""
        bad, self._feed.bad = self._feed.bad, []
        return bad

    def next_record(self) -> tuple[int, int, list[str] | Unreadable] | None:
        """The next record (its first and last line, and its values or why it cannot be
        read), or None at the end of the file."""
        feed = self._feed
        feed.taken = []
        try:
            cells = next(self._csv)
        except StopIteration:
            return None
        except (csv.Error, _UnclosedQuoteError) as exc:
            taken = feed.taken
            first = taken[0][0] if taken else self.lines.number
            self.lines.give_back(taken[1:])
            return first, first, _unreadable_line(first, exc, len(taken))
        return feed.taken[0][0], feed.taken[-1][0], cells


_RESUMES = "the line is skipped and reading goes on with the next line"


def _unreadable_line(line: int, exc: Exception, spanned: int) -> Unreadable:
    if isinstance(exc, _UnclosedQuoteError):
        where = exc.why
    elif str(exc) == "unexpected end of data":
        where = "before the end of the file"
    elif spanned > 1:
        where = f"properly ({exc})"
    else:
        return Unreadable(line, "malformed_csv", f"the line is not valid CSV ({exc}); {_RESUMES}")
    return Unreadable(
        line, "unclosed_quote", f"a quote opened on this line is not closed {where}; {_RESUMES}"
    )
