"""Reading an import file never loses a line without a word: over generated files with
broken quotes (a quote opened and never closed, a quote closed in the middle of a value),
bad bytes, blank lines and good rows (values with commas, quotes and line breaks), every
good row is read exactly, every broken line is rejected with its own number and reason,
and nothing else is: a broken quote costs its own line only."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailshot.crm.services import csv_people
from mailshot.crm.services.csv_people import EmailChecker, Rejected, Row
from mailshot.crm.services.csv_records import MAX_RECORD_LINES

HEADER = "email,first_name,last_name\n"
#: Text of a value: letters, and what makes CSV quote (commas, quotes), no line breaks.
_WORD = st.text(alphabet='abcXYZ ,"', min_size=1, max_size=8).map(lambda s: s.strip() or "x")
_LETTERS = st.text(alphabet="abcdefXYZ", min_size=1, max_size=6)


@dataclass
class File:
    #: Each entry of the file (one line, or a row whose value spans two) by its first line.
    entries: dict[int, str] = field(default_factory=dict)
    #: email -> (first_name, last_name) of every good row.
    good: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: line number -> reason of every line that must be rejected.
    broken: dict[int, str] = field(default_factory=dict)
    bad_bytes: set[int] = field(default_factory=set)
    lines: int = 1  # the header

    def add(self, text: str) -> int:
        number = self.lines + 1
        self.entries[number] = text
        self.lines += text.count("\n")
        return number

    def data(self, trailing_newline: bool) -> bytes:
        out = HEADER.encode()
        for number, text in self.entries.items():
            out += b"caf\xe9,bad,bytes\n" if number in self.bad_bytes else text.encode()
        return out if trailing_newline else out.rstrip(b"\n")


def _good_row(i: int, first: str, last: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([f"g{i}@example.com", first, last])
    return buf.getvalue()


@st.composite
def files(draw: st.DrawFn) -> tuple[File, bool]:
    f = File()
    for i in range(draw(st.integers(1, 30))):
        kind = draw(
            st.sampled_from(
                [
                    "good",
                    "good",
                    "good",
                    "multiline",
                    "open",
                    "open",
                    "closed_early",
                    "blank",
                    "bytes",
                ]
            )
        )
        if kind in ("good", "multiline"):
            first = draw(_WORD)
            if kind == "multiline":  # a value with a line break, as an address has
                first = f"{draw(_LETTERS)}\n{draw(_LETTERS)}"
            last = draw(_WORD)
            f.add(_good_row(i, first, last))
            f.good[f"g{i}@example.com"] = (first, last)
        elif kind == "open":  # a quote opened in one of the three values, never closed
            where = draw(st.integers(0, 2))
            cells = [f"b{i}@example.com", "Broken", draw(_LETTERS)]
            cells[where] = '"' + ",".join(cells[where:]) + draw(st.sampled_from(["", ", more"]))
            f.broken[f.add(",".join(cells[: where + 1]) + "\n")] = "unclosed_quote"
        elif kind == "closed_early":  # text after a closing quote: not CSV
            f.broken[f.add(f'c{i}@example.com,"Closed"early,X\n')] = "malformed_csv"
        elif kind == "blank":
            f.add("\n")
        else:
            number = f.add("placeholder\n")
            f.bad_bytes.add(number)
            f.broken[number] = "encoding"
    return f, draw(st.booleans())


def _read(data: bytes) -> tuple[dict[str, Row], dict[int, Rejected], set[int]]:
    header, reader = csv_people.open_records(io.BytesIO(data), "people.csv")
    mapping = csv_people.resolve_mapping(header, {})
    rows: dict[str, Row] = {}
    rejected: dict[int, Rejected] = {}
    covered: set[int] = {1}
    for record in csv_people.records(reader, mapping, EmailChecker()):
        for bad in record.bad_lines:
            rejected[bad.line] = bad
            covered.add(bad.line)
        if isinstance(record.outcome, Row):
            rows[record.outcome.values["email"]] = record.outcome
        elif isinstance(record.outcome, Rejected):
            rejected[record.outcome.line] = record.outcome
        if record.outcome is not None:
            covered.update(range(record.first_line, record.last_line + 1))
    return rows, rejected, covered


@hsettings(max_examples=400, deadline=None)
@given(files())
def test_every_good_row_is_read_and_each_broken_line_costs_only_itself(
    generated: tuple[File, bool],
) -> None:
    f, trailing_newline = generated
    rows, rejected, covered = _read(f.data(trailing_newline))
    got = {
        email: (row.values.get("first_name", ""), row.values.get("last_name", ""))
        for email, row in rows.items()
    }
    assert got == f.good
    assert {n: r.reason for n, r in rejected.items()} == f.broken
    blank = {n for n, text in f.entries.items() if text == "\n"}
    assert covered | blank == set(range(1, f.lines + 1)), "a line is neither read nor reported"


def test_the_issues_file_four_lines_from_the_end() -> None:
    lines = [f"p{i}@example.com,P{i},Last{i}\n" for i in range(10)]
    lines.insert(6, 'tail.bad@example.com,Broken,"tail\n')
    rows, rejected, _ = _read((HEADER + "".join(lines)).encode())
    assert sorted(rows) == sorted(f"p{i}@example.com" for i in range(10))
    assert {r.values["last_name"] for r in rows.values()} == {f"Last{i}" for i in range(10)}
    assert list(rejected) == [8]
    assert rejected[8].reason == "unclosed_quote"
    assert "reading goes on with the next line" in rejected[8].message


def test_a_quote_that_never_closes_stops_after_the_bound_and_reading_resumes() -> None:
    # Lines without values of their own (one column each) cannot end the open quote early:
    # the bound does, and every one of them is read again (and rejected for its width).
    body = 'open@example.com,Open,"never\n' + "".join(
        f"word{i}\n" for i in range(MAX_RECORD_LINES + 5)
    )
    rows, rejected, covered = _read((HEADER + body + "z@example.com,Z,Z\n").encode())
    assert list(rows) == ["z@example.com"]
    assert rejected[2].reason == "unclosed_quote"
    assert f"within {MAX_RECORD_LINES} lines" in rejected[2].message
    assert {r.reason for n, r in rejected.items() if n > 2} == {"column_count"}
    assert covered == set(range(1, MAX_RECORD_LINES + 9))
