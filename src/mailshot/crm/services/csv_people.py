"""Reading People from a CSV file, without touching the database: the column mapping, the
file read line by line (each line decoded on its own, so one badly encoded line is
reported and skipped instead of stopping the file), parsed strictly into records
(:mod:`mailshot.crm.services.csv_records`: a line that cannot be parsed, such as a quote
left open, is reported and costs that line only), and each row checked into the values
to write or the reason it is rejected.

Everything here is pure and streaming: :func:`records` yields one record at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from email_validator import EmailNotValidError, validate_email

from mailshot.core.errors import AppError, FieldProblem, validation_error
from mailshot.crm.services.csv_records import RecordReader

#: The person fields a column can fill, and the longest value each takes.
FIELDS: dict[str, int] = {
    "email": 320,
    "first_name": 255,
    "last_name": 255,
    "country": 100,
    "job_title": 255,
    "organisation_id": 0,
    "no_email": 0,
}
#: Header names understood without a mapping (after lower-casing and trimming).
ALIASES = {
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "first name": "first_name",
    "firstname": "first_name",
    "given name": "first_name",
    "last name": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family name": "last_name",
    "job title": "job_title",
    "organisation": "organisation_id",
    "organisation id": "organisation_id",
    "organization_id": "organisation_id",
    "no email": "no_email",
    "opt out": "no_email",
}
_TRUE = frozenset({"true", "yes", "y", "1", "x"})
_FALSE = frozenset({"false", "no", "n", "0"})


# ---- the mapping ------------------------------------------------------------------------
@dataclass(frozen=True)
class Mapping:
    """Which column (by position) fills which field; the columns left unread."""

    columns: dict[str, str]
    positions: dict[str, int]
    width: int
    ignored: list[str] = field(default_factory=list)


def resolve_mapping(header: list[str], given: dict[str, str]) -> Mapping:
    """The mapping for a file with ``header``: ``given`` (CSV column -> field) first, then
    every other column named after a field (or a known alias). Refuses, with one detail
    per problem, a mapping naming a column the file lacks or a field that does not exist,
    a field filled twice, or no email column."""
    names = [h.strip() for h in header]
    problems: list[FieldProblem] = []
    columns: dict[str, str] = {}
    for column, target in given.items():
        target = target.strip().lower()
        if column not in names:
            problems.append(
                FieldProblem(
                    f"map.{column}",
                    "unknown_column",
                    f"the file has no column '{column}' (its columns: {', '.join(names)})",
                )
            )
        elif target not in FIELDS:
            problems.append(
                FieldProblem(
                    f"map.{column}",
                    "unknown_field",
                    f"'{target}' is not a person field ({', '.join(FIELDS)})",
                )
            )
        else:
            columns[column] = target
    for name in names:
        if name in columns or name in given:
            continue
        key = name.lower()
        target = key if key in FIELDS else ALIASES.get(key, "")
        if target and target not in columns.values():
            columns[name] = target
    filled: dict[str, str] = {}
    for column, target in columns.items():
        if target in filled:
            problems.append(
                FieldProblem(
                    f"map.{column}",
                    "field_twice",
                    f"'{target}' is already filled from column '{filled[target]}'",
                )
            )
        filled[target] = column
        if names.count(column) > 1:
            problems.append(
                FieldProblem(f"map.{column}", "column_twice", "the file has two such columns")
            )
    if "email" not in filled and not problems:
        problems.append(
            FieldProblem(
                "map",
                "email_required",
                "no column gives the email address (people are matched by it); "
                "map one with email, e.g. --map 'E-mail=email'",
            )
        )
    if problems:
        raise validation_error(problems)
    positions = {target: names.index(column) for column, target in columns.items()}
    ignored = [n for n in names if n not in columns]
    return Mapping(columns=columns, positions=positions, width=len(names), ignored=ignored)


# ---- email addresses --------------------------------------------------------------------
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
#: A plain ASCII address: a dot-atom local part, and a domain of letters, digits, . and -.
_PLAIN = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@([A-Za-z0-9.-]+)\Z")
_DOMAIN_CACHE_MAX = 100_000


class EmailChecker:
    """``email_status`` as the People service computes it (email-validator, no network),
    fast: a plain ASCII address is checked by its parts, and each domain only once."""

    def __init__(self) -> None:
        self._domains: dict[str, str | None] = {}

    @staticmethod
    def slow(address: str) -> str | None:
        """None when valid, else email-validator's reason."""
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            return str(exc)
        return None

    def problem(self, address: str) -> str | None:
        """Why ``address`` (trimmed, not blank) is not valid, or None."""
        plain = _PLAIN.match(address)
        if plain is not None and len(plain[1]) <= 64 and len(address) <= 254:
            key = plain[2].lower()
            try:
                return self._domains[key]
            except KeyError:
                if len(self._domains) >= _DOMAIN_CACHE_MAX:
                    self._domains.clear()
                why = self._domains[key] = self.slow(f"a@{plain[2]}")
                return why
        return self.slow(address)


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str
    message: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """A row that can be applied: its line, the normalised address and the values given
    (a blank cell is left out: it changes nothing)."""

    line: int
    email_normalised: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the file: its first and last line, and what it became (None for a
    blank line); ``bad_lines`` are the lines before it that could not be decoded."""

    first_line: int
    last_line: int
    outcome: Row | Rejected | None
    bad_lines: list[Rejected]


def open_records(
    fh: IO[bytes], file_name: str, on_bytes: Callable[[int], None] | None = None
) -> tuple[list[str], RecordReader]:
    """The header, and the reader positioned after it."""
    reader = RecordReader(fh, on_bytes)
    first = reader.next_record()
    bad = reader.bad_lines()
    if bad and bad[0][0] == 1:
        raise AppError(_unreadable(), file_name=file_name, reason=f"line 1: {bad[0][1]}")
    header: list[str] = []
    if first is not None:
        outcome = first[2]
        if not isinstance(outcome, list):
            reason = f"line {outcome.line}: {outcome.message}"
            raise AppError(_unreadable(), file_name=file_name, reason=reason)
        header = outcome
    if not any(h.strip() for h in header):
        raise AppError(_unreadable(), file_name=file_name, reason="it has no header line")
    reader.set_width(len(header))
    return header, reader


def _unreadable() -> Any:
    from mailshot.crm.errors import IMPORT_FILE_UNREADABLE

    return IMPORT_FILE_UNREADABLE


def records(reader: RecordReader, mapping: Mapping, checker: EmailChecker) -> Iterator[Record]:
    """Every record after the header, checked."""
    while True:
        record = reader.next_record()
        bad = _bad(reader)
        if record is None:
            if bad:
                yield Record(reader.lines.number, reader.lines.number, None, bad)
            return
        first, last, cells = record
        if not isinstance(cells, list):
            yield Record(first, last, Rejected(*cells), bad)
            continue
        outcome = check_row(first, cells, mapping, checker) if cells else None
        yield Record(first, last, outcome, bad)


_NONE: list[Rejected] = []


def _bad(reader: RecordReader) -> list[Rejected]:
    bad = reader.bad_lines()
    if not bad:
        return _NONE
    return [Rejected(n, "encoding", why) for n, why in bad]


def check_row(
    line: int, cells: list[str], mapping: Mapping, checker: EmailChecker
) -> Row | Rejected:
    """The row's values, or why it is rejected (the first problem found)."""
    if len(cells) != mapping.width:
        return Rejected(
            line, "column_count", f"has {len(cells)} values for {mapping.width} columns"
        )
    pos = mapping.positions
    email = cells[pos["email"]].strip()
    if not email:
        return Rejected(line, "no_email", "has no email address")
    if len(email) > FIELDS["email"]:
        return Rejected(line, "invalid_email", "the email address is too long", email[:320])
    why = checker.problem(email)
    if why is not None:
        return Rejected(line, "invalid_email", f"'{email}' is not a valid address: {why}", email)
    values: dict[str, Any] = {"email": email}
    for name, index in pos.items():
        if name == "email":
            continue
        raw = cells[index].strip()
        if not raw:
            continue
        if name == "no_email":
            flag = raw.lower()
            if flag not in _TRUE and flag not in _FALSE:
                return Rejected(
                    line, "invalid_value", f"no_email '{raw}' is not yes/no (or true/false)", email
                )
            values[name] = flag in _TRUE
        elif name == "organisation_id":
            if not raw.isdigit():
                return Rejected(
                    line, "invalid_value", f"organisation_id '{raw}' is not a number", email
                )
            values[name] = int(raw)
        elif len(raw) > FIELDS[name]:
            return Rejected(
                line, "invalid_value", f"{name} is longer than {FIELDS[name]} characters", email
            )
        else:
            values[name] = raw
    return Row(line, email.lower(), values)
